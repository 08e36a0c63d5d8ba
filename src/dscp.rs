//! DSCP code points by name (RFC 4594's classes, RFC 8622's LE, RFC 5865's VOICE-ADMIT), both
//! ways: `--dscp EF` reads a name, and records show the name beside the number.
#![forbid(unsafe_code)]

/// The standard name of a code point, if it has one: `46` → `EF`, `34` → `AF41`, `8` → `CS1`.
pub fn name(dscp: u8) -> Option<&'static str> {
    const CS: [&str; 8] = ["DF", "CS1", "CS2", "CS3", "CS4", "CS5", "CS6", "CS7"];
    const AF: [[&str; 3]; 4] = [
        ["AF11", "AF12", "AF13"],
        ["AF21", "AF22", "AF23"],
        ["AF31", "AF32", "AF33"],
        ["AF41", "AF42", "AF43"],
    ];
    match dscp {
        1 => Some("LE"),
        44 => Some("VA"),
        46 => Some("EF"),
        d if d % 8 == 0 && d < 64 => Some(CS[usize::from(d / 8)]),
        d if (1..=4).contains(&(d / 8)) && [2, 4, 6].contains(&(d % 8)) => {
            Some(AF[usize::from(d / 8 - 1)][usize::from(d % 8 / 2 - 1)])
        }
        _ => None,
    }
}

/// A code point from its name (any case; `BE`, `DEFAULT` and `CS0` are `DF`, `VOICE-ADMIT` is
/// `VA`) or its number (decimal or `0x..`, 0-63).
pub fn parse(s: &str) -> Result<u8, String> {
    let up = s.trim().to_ascii_uppercase();
    let alias = match up.as_str() {
        "BE" | "DEFAULT" | "CS0" => "DF",
        "VOICE-ADMIT" => "VA",
        other => other,
    };
    if let Some(d) = (0..64).find(|d| name(*d) == Some(alias)) {
        return Ok(d);
    }
    let number = match up.strip_prefix("0X") {
        Some(hex) => u8::from_str_radix(hex, 16).ok(),
        None => up.parse::<u8>().ok(),
    };
    match number {
        Some(v) if v <= 63 => Ok(v),
        _ => Err(format!(
            "'{s}' is not a DSCP class: use a name (EF, AF41, CS1) or 0-63"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_rfc_4594() {
        for (n, d) in [
            ("DF", 0),
            ("LE", 1),
            ("CS1", 8),
            ("AF11", 10),
            ("AF13", 14),
            ("AF21", 18),
        ] {
            assert_eq!(name(d), Some(n));
            assert_eq!(parse(n), Ok(d));
        }
        for (n, d) in [
            ("AF41", 34),
            ("AF43", 38),
            ("CS5", 40),
            ("VA", 44),
            ("EF", 46),
            ("CS7", 56),
        ] {
            assert_eq!(name(d), Some(n));
            assert_eq!(parse(&n.to_ascii_lowercase()), Ok(d));
        }
        for d in 0..64 {
            if let Some(n) = name(d) {
                assert_eq!(parse(n), Ok(d), "{n}");
            }
        }
        assert_eq!(name(3), None);
        assert_eq!(name(63), None);
        assert_eq!(parse("be"), Ok(0));
        assert_eq!(parse("0x2e"), Ok(46));
        assert_eq!(parse("63"), Ok(63));
        assert!(parse("64").is_err());
        assert!(parse("AF51").is_err());
        assert!(parse("CS8").is_err());
    }
}
