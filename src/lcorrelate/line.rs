//! One JSON line decoded into the members lcorrelate reads.
//!
//! Most lines are plain: an object whose strings have no escapes. Those are scanned here
//! straight from their bytes, borrowing every string, which is several times faster than
//! serde_json's generic deserializer. Anything else (escapes, a duplicate member, a number
//! out of range, a value of an unexpected type, deep nesting, bad syntax) the scanner gives
//! up on, and serde_json decodes the line: so every line decodes to what serde_json makes of
//! it, and a malformed one fails with serde_json's own message.

use serde::Deserialize;
use std::borrow::Cow;

/// The members of a line lcorrelate reads; everything else is ignored. Borrowed where the
/// JSON has no escapes, so the hot path does not allocate per member.
#[derive(Deserialize, Default)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub struct LineIn<'a> {
    #[serde(rename = "type", borrow)]
    pub kind: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub src: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub dst: Option<Cow<'a, str>>,
    #[serde(borrow)]
    pub hops: Option<Vec<HopIn<'a>>>,
    pub reached: Option<bool>,
    pub sent: Option<u64>,
    pub lost: Option<u64>,
    pub lost_fwd: Option<u64>,
    pub lost_rev: Option<u64>,
    #[serde(borrow)]
    pub proto: Option<Cow<'a, str>>,
    pub sport: Option<u16>,
    pub dport: Option<u16>,
}

#[derive(Deserialize)]
#[cfg_attr(test, derive(Debug, PartialEq))]
pub struct HopIn<'a> {
    #[serde(borrow)]
    pub addr: Option<Cow<'a, str>>,
}

/// Only the type, to tell a record of another kind from a malformed `path` record.
#[derive(Deserialize)]
struct KindOnly<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
}

/// Decodes a line, without its line end (so that an error is placed on this line).
pub fn decode(line: &[u8]) -> Result<LineIn<'_>, serde_json::Error> {
    // Checked for UTF-8 once, so that neither the scanner nor serde_json need check every
    // string they borrow; a line that is not goes the slower way, to the same result and
    // error message.
    match std::str::from_utf8(line) {
        Ok(text) => match scan(text) {
            Some(rec) => Ok(rec),
            None => serde_json::from_str(text),
        },
        Err(_) => serde_json::from_slice(line),
    }
}

/// The `type` of a line [`decode`] failed on, when it has one that is not `path`: a record
/// of another kind may use lcorrelate's member names with other types.
pub fn other_kind(line: &[u8]) -> bool {
    serde_json::from_slice::<KindOnly>(line)
        .is_ok_and(|k| k.kind.as_deref().is_some_and(|k| k != "path"))
}

/// Nesting deeper than this in an ignored member is left to serde_json (whose own limit is
/// 128).
const MAX_DEPTH: u32 = 32;

/// The line scanned as [`LineIn`]; None where serde_json is to decide.
fn scan(text: &str) -> Option<LineIn<'_>> {
    let mut s = Scanner { text, at: 0 };
    let mut rec = LineIn::default();
    s.expect(b'{')?;
    if !s.empty_end(b'}')? {
        // One bit per member read: serde_json rejects a member given twice.
        let mut seen = 0u16;
        loop {
            let key = s.string()?;
            s.expect(b':')?;
            let bit = match key {
                "type" => {
                    rec.kind = s.opt_str()?;
                    1
                }
                "src" => {
                    rec.src = s.opt_str()?;
                    2
                }
                "dst" => {
                    rec.dst = s.opt_str()?;
                    4
                }
                "hops" => {
                    rec.hops = s.opt_hops()?;
                    8
                }
                "reached" => {
                    rec.reached = s.opt_bool()?;
                    16
                }
                "sent" => {
                    rec.sent = s.opt_u64()?;
                    32
                }
                "lost" => {
                    rec.lost = s.opt_u64()?;
                    64
                }
                "lost_fwd" => {
                    rec.lost_fwd = s.opt_u64()?;
                    128
                }
                "lost_rev" => {
                    rec.lost_rev = s.opt_u64()?;
                    256
                }
                "proto" => {
                    rec.proto = s.opt_str()?;
                    512
                }
                "sport" => {
                    rec.sport = s.opt_u16()?;
                    1024
                }
                "dport" => {
                    rec.dport = s.opt_u16()?;
                    2048
                }
                _ => {
                    s.skip_value(1)?;
                    0
                }
            };
            if seen & bit != 0 {
                return None;
            }
            seen |= bit;
            if !s.more(b'}')? {
                break;
            }
        }
    }
    s.skip_ws();
    (s.at == text.len()).then_some(rec)
}

/// Where the first quote, backslash or control character is in `bytes`: eight bytes at a
/// time, as most strings (addresses, times) are longer than a few.
fn string_len(bytes: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let mut at = 0;
    while let Some(word) = bytes.get(at..at + 8) {
        let w = u64::from_le_bytes(word.try_into().unwrap());
        // A byte's high bit set where it is 0 after the xor (the quote, the backslash) or
        // below 0x20; exact up to the first such byte, which is all that is looked at.
        let quote = w ^ (ONES * u64::from(b'"'));
        let backslash = w ^ (ONES * u64::from(b'\\'));
        let found = (quote.wrapping_sub(ONES) & !quote
            | backslash.wrapping_sub(ONES) & !backslash
            | w.wrapping_sub(ONES * 0x20) & !w)
            & HIGH;
        if found != 0 {
            return Some(at + found.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    let rest = bytes[at..]
        .iter()
        .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
    Some(at + rest)
}

/// A position in a line; every method returns None where the scanner gives up.
struct Scanner<'a> {
    text: &'a str,
    at: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.at).copied()
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.at += 1;
        }
    }

    /// `b` after optional whitespace.
    fn expect(&mut self, b: u8) -> Option<()> {
        self.skip_ws();
        (self.peek()? == b).then(|| self.at += 1)
    }

    /// Right after an opening bracket: whether the list ends at once (`close`).
    fn empty_end(&mut self, close: u8) -> Option<bool> {
        self.skip_ws();
        let end = self.peek()? == close;
        if end {
            self.at += 1;
        }
        Some(end)
    }

    /// After a list's item: whether another follows (a comma) or the list ends (`close`).
    fn more(&mut self, close: u8) -> Option<bool> {
        self.skip_ws();
        match self.peek()? {
            b',' => {
                self.at += 1;
                Some(true)
            }
            b if b == close => {
                self.at += 1;
                Some(false)
            }
            _ => None,
        }
    }

    /// `word` (a literal) if it comes next.
    fn literal(&mut self, word: &str) -> bool {
        let found = self.text.as_bytes()[self.at..].starts_with(word.as_bytes());
        if found {
            self.at += word.len();
        }
        found
    }

    /// A string without escapes, borrowed. (serde_json also rejects control characters in
    /// a string, and unescapes escapes: both are left to it.)
    fn string(&mut self) -> Option<&'a str> {
        self.skip_ws();
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.at + 1;
        let bytes = &self.text.as_bytes()[start..];
        let len = string_len(bytes)?;
        if bytes[len] != b'"' {
            return None;
        }
        self.at = start + len + 1;
        // Both ends are ASCII quotes, so on character boundaries.
        Some(&self.text[start..start + len])
    }

    fn opt_str(&mut self) -> Option<Option<Cow<'a, str>>> {
        self.skip_ws();
        if self.literal("null") {
            return Some(None);
        }
        self.string().map(|s| Some(Cow::Borrowed(s)))
    }

    fn opt_bool(&mut self) -> Option<Option<bool>> {
        self.skip_ws();
        if self.literal("null") {
            Some(None)
        } else if self.literal("true") {
            Some(Some(true))
        } else if self.literal("false") {
            Some(Some(false))
        } else {
            None
        }
    }

    /// An unsigned integer as serde_json reads one into a u64: digits, no leading zero, no
    /// fraction or exponent (those make it a float: a type error), within range.
    fn opt_u64(&mut self) -> Option<Option<u64>> {
        self.skip_ws();
        if self.literal("null") {
            return Some(None);
        }
        let bytes = &self.text.as_bytes()[self.at..];
        let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        if digits == 0 || (digits > 1 && bytes[0] == b'0') {
            return None;
        }
        if let Some(b'.' | b'e' | b'E') = bytes.get(digits) {
            return None;
        }
        let mut n = 0u64;
        for &d in &bytes[..digits] {
            n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
        }
        self.at += digits;
        Some(Some(n))
    }

    fn opt_u16(&mut self) -> Option<Option<u16>> {
        match self.opt_u64()? {
            Some(n) => u16::try_from(n).ok().map(Some),
            None => Some(None),
        }
    }

    fn opt_hops(&mut self) -> Option<Option<Vec<HopIn<'a>>>> {
        self.skip_ws();
        if self.literal("null") {
            return Some(None);
        }
        self.expect(b'[')?;
        let mut hops = Vec::new();
        if self.empty_end(b']')? {
            return Some(Some(hops));
        }
        loop {
            hops.push(self.hop()?);
            if !self.more(b']')? {
                return Some(Some(hops));
            }
        }
    }

    /// A hop: an object (serde would also take a list, left to it) with at most one `addr`.
    fn hop(&mut self) -> Option<HopIn<'a>> {
        self.expect(b'{')?;
        let mut hop = HopIn { addr: None };
        if self.empty_end(b'}')? {
            return Some(hop);
        }
        let mut seen = false;
        loop {
            if self.string()? == "addr" {
                self.expect(b':')?;
                if std::mem::replace(&mut seen, true) {
                    return None;
                }
                hop.addr = self.opt_str()?;
            } else {
                self.expect(b':')?;
                self.skip_value(2)?;
            }
            if !self.more(b'}')? {
                return Some(hop);
            }
        }
    }

    /// Any JSON value, checked as serde_json checks one it ignores; `depth`: how deep in
    /// the line it is.
    fn skip_value(&mut self, depth: u32) -> Option<()> {
        self.skip_ws();
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'-' | b'0'..=b'9' => self.number(),
            b'[' | b'{' if depth >= MAX_DEPTH => None,
            b'[' => {
                self.at += 1;
                if self.empty_end(b']')? {
                    return Some(());
                }
                loop {
                    self.skip_value(depth + 1)?;
                    if !self.more(b']')? {
                        return Some(());
                    }
                }
            }
            b'{' => {
                self.at += 1;
                if self.empty_end(b'}')? {
                    return Some(());
                }
                loop {
                    self.string()?;
                    self.expect(b':')?;
                    self.skip_value(depth + 1)?;
                    if !self.more(b'}')? {
                        return Some(());
                    }
                }
            }
            _ => (self.literal("true") || self.literal("false") || self.literal("null"))
                .then_some(()),
        }
    }

    /// A number as JSON writes one: `-`, then `0` or digits not starting with `0`, then
    /// optionally `.` and digits, then optionally `e` or `E`, a sign and digits.
    fn number(&mut self) -> Option<()> {
        let bytes = self.text.as_bytes();
        let digits_from = |i: usize| {
            bytes[i.min(bytes.len())..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count()
        };
        let mut i = self.at;
        if bytes[i] == b'-' {
            i += 1;
        }
        let int = digits_from(i);
        if int == 0 || (int > 1 && bytes[i] == b'0') {
            return None;
        }
        i += int;
        if bytes.get(i) == Some(&b'.') {
            let frac = digits_from(i + 1);
            if frac == 0 {
                return None;
            }
            i += 1 + frac;
        }
        if let Some(b'e' | b'E') = bytes.get(i) {
            i += 1;
            if let Some(b'+' | b'-') = bytes.get(i) {
                i += 1;
            }
            let exp = digits_from(i);
            if exp == 0 {
                return None;
            }
            i += exp;
        }
        self.at = i;
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::lcorrelate::sim::Rng;

    /// The scanner agrees with serde_json wherever it decodes a line, and gives up (leaving
    /// serde_json to decide) on the rest.
    fn agrees(text: &str) -> bool {
        let by_serde = serde_json::from_str::<LineIn>(text);
        match scan(text) {
            Some(rec) => {
                match by_serde {
                    Ok(expected) => assert_eq!(rec, expected, "{text}"),
                    Err(e) => panic!("scanned a line serde_json rejects ({e}): {text}"),
                }
                true
            }
            None => false,
        }
    }

    #[test]
    fn plain_lines_are_scanned_as_serde_json_reads_them() {
        for line in [
            r#"{"type":"path","tool":"ludp","ts":"2026-11-22T10:00:00.000000000Z","src":"10.1.0.1","dst":"10.1.2.185","proto":"udp","sport":49535,"dport":8081,"hops":[{"ttl":1,"addr":"fd00:2800::0","rtt_ms":0.050},{"ttl":2},{"ttl":3,"addr":"10.1.2.185","rtt_ms":0.200}],"reached":true,"sent":325,"lost":0}"#,
            r#"{"type":"reply","tool":"lping","addr":"10.0.0.1","seq":1,"rtt_ms":0.1}"#,
            r#" { "dst" : "b" , "src":"a", "hops" : [ ] ,"type":"path"} "#,
            "{\t\"type\":\"path\",\r\"src\":\"a\",\"dst\":\"b\",\"hops\":[{}]}",
            r#"{"type":"path","src":"höst","dst":"日本","hops":[{"addr":"→"}]}"#,
            r#"{"type":null,"src":null,"dst":null,"hops":null,"reached":null,"sent":null,"lost":null,"lost_fwd":null,"lost_rev":null,"proto":null,"sport":null,"dport":null}"#,
            r#"{"type":"path","sent":18446744073709551615,"lost":0,"lost_fwd":1,"lost_rev":2,"sport":65535,"dport":0,"reached":false}"#,
            r#"{"x":{"a":[1,-2.5e-3,true,false,null,{"b":[]},"s"],"c":{}},"y":[[[]]],"z":-0,"w":0.1E+5}"#,
            r#"{"hops":[{"addr":"a","x":{"addr":"b"},"ttl":3},{"addr":null}],"type":"path"}"#,
            "{}",
        ] {
            assert!(agrees(line), "not scanned: {line}");
        }
    }

    #[test]
    fn what_the_scanner_leaves_to_serde_json_decodes_as_before() {
        for line in [
            // Escapes, which serde_json unescapes.
            r#"{"type":"path","src":"a\"b","dst":"b","hops":[]}"#,
            r#"{"type":"pa\u0074h","src":"a","dst":"b","hops":[]}"#,
            r#"{"typ\u0065":"path"}"#,
            r#"{"tool":"\\","type":"path"}"#,
            // A control character in a string: serde_json rejects it.
            "{\"type\":\"pa\u{1}th\"}",
            // Members given twice: serde_json rejects them.
            r#"{"type":"path","type":"path"}"#,
            r#"{"hops":[{"addr":"a","addr":"b"}]}"#,
            // Numbers out of range, negative, with a fraction or an exponent, a leading zero.
            r#"{"sent":18446744073709551616}"#,
            r#"{"sent":-1}"#,
            r#"{"sent":1.0}"#,
            r#"{"sent":1e2}"#,
            r#"{"sent":01}"#,
            r#"{"sport":65536}"#,
            r#"{"x":01}"#,
            r#"{"x":1.}"#,
            r#"{"x":-}"#,
            r#"{"x":1e}"#,
            // Other types where lcorrelate reads a member.
            r#"{"type":1}"#,
            r#"{"src":{"a":1}}"#,
            r#"{"hops":3}"#,
            r#"{"hops":[["a"]]}"#,
            r#"{"hops":["a"]}"#,
            r#"{"reached":"yes"}"#,
            r#"{"sent":"1"}"#,
            // Bad syntax.
            r#"{"type":"path",}"#,
            r#"{"type":"path"} x"#,
            r#"{"type":"path""#,
            r#"{"type" "path"}"#,
            r#"{"type":"path"}}"#,
            r#"{"x":tru}"#,
            r#"{"x":nul}"#,
            r#"{"x":[1,]}"#,
            r#"{"x":{"a"}}"#,
            r#"{"reached":truex}"#,
            r#"["path","a","b"]"#,
            "\u{feff}{}",
            "",
            "nope",
            // Nesting deeper than the scanner follows.
            &format!(r#"{{"x":{}{}}}"#, "[".repeat(40), "]".repeat(40)),
            &format!(r#"{{"x":{}{}}}"#, "[".repeat(200), "]".repeat(200)),
        ] {
            assert!(!agrees(line), "scanned: {line}");
        }
    }

    /// A random line built from pieces of path records, plain and odd: `plain` leaves out
    /// what the scanner gives up on.
    fn random_line(rng: &mut Rng, plain: bool) -> String {
        const KEYS: [&str; 16] = [
            "type", "src", "dst", "hops", "reached", "sent", "lost", "lost_fwd", "lost_rev",
            "proto", "sport", "dport", "tool", "ts", "addr", "x",
        ];
        const STRINGS: [&str; 9] = [
            "path",
            "reply",
            "10.0.0.1",
            "fd00:2800::0",
            "",
            "udp",
            "é日",
            "?a>b#1",
            " a b ",
        ];
        const ODD_STRINGS: [&str; 4] = [r#"a\"b"#, r#"\u0070ath"#, r#"\\"#, "\u{7}"];
        const NUMBERS: [&str; 10] = [
            "0",
            "7",
            "65535",
            "65536",
            "18446744073709551615",
            "-1",
            "0.5",
            "1e3",
            "-0",
            "2E-2",
        ];
        let ws = |rng: &mut Rng| ["", " ", "\t", "  \r "][rng.below(if plain { 3 } else { 4 })];
        fn pick<'a>(rng: &mut Rng, of: &[&'a str]) -> &'a str {
            of[rng.below(of.len())]
        }
        let value = |rng: &mut Rng, key: &str| -> String {
            let odd = !plain && rng.below(10) == 0;
            match (key, rng.below(12)) {
                (_, 0) => "null".into(),
                _ if odd => match rng.below(4) {
                    0 => format!("\"{}\"", pick(rng, &ODD_STRINGS)),
                    1 => pick(rng, &NUMBERS).into(),
                    2 => "[1,{\"a\":[true]}]".into(),
                    _ => "tru".into(),
                },
                ("hops", _) => {
                    let hops: Vec<String> = (0..rng.below(5))
                        .map(|t| match rng.below(4) {
                            0 => format!("{{\"ttl\":{t}}}"),
                            1 => "{}".into(),
                            _ => format!(
                                "{{\"ttl\":{t},{}\"addr\"{}:{}\"{}\",\"rtt_ms\":0.050}}",
                                ws(rng),
                                ws(rng),
                                ws(rng),
                                pick(rng, &STRINGS)
                            ),
                        })
                        .collect();
                    format!("[{}]", hops.join(","))
                }
                ("reached", n) => (n % 2 == 0).to_string(),
                ("sent" | "lost" | "lost_fwd" | "lost_rev", _) => {
                    pick(rng, &NUMBERS[..if plain { 3 } else { 5 }]).into()
                }
                ("sport" | "dport", _) => pick(rng, &NUMBERS[..3]).into(),
                ("x", _) => format!("{{\"a\":[{},{{}},[]]}}", pick(rng, &NUMBERS)),
                _ => format!("\"{}\"", pick(rng, &STRINGS)),
            }
        };
        let mut keys: Vec<&str> = KEYS.to_vec();
        // Reordered, some left out, and now and then one given twice.
        for i in (1..keys.len()).rev() {
            keys.swap(i, rng.below(i + 1));
        }
        keys.truncate(rng.below(KEYS.len() + 1));
        if !plain && !keys.is_empty() && rng.below(8) == 0 {
            keys.push(keys[rng.below(keys.len())]);
        }
        let members: Vec<String> = keys
            .iter()
            .map(|k| format!("{}\"{k}\"{}:{}{}", ws(rng), ws(rng), ws(rng), value(rng, k)))
            .collect();
        let mut line = format!("{}{{{}}}{}", ws(rng), members.join(","), ws(rng));
        if !plain && rng.below(8) == 0 {
            // Cut anywhere (on a character boundary).
            let mut at = rng.below(line.len());
            while !line.is_char_boundary(at) {
                at -= 1;
            }
            line.truncate(at);
        }
        line
    }

    #[test]
    fn the_scanner_and_serde_json_agree_on_random_lines() {
        let mut rng = Rng::new(12);
        for plain in [true, false] {
            let mut scanned = 0;
            for _ in 0..20_000 {
                let line = random_line(&mut rng, plain);
                scanned += usize::from(agrees(&line));
            }
            if plain {
                assert_eq!(scanned, 20_000, "every plain line is scanned");
            } else {
                assert!(scanned > 5_000 && scanned < 19_000, "{scanned}");
            }
        }
    }

    #[test]
    fn a_strings_end_is_found_eight_bytes_at_a_time_as_one_at_a_time() {
        let mut rng = Rng::new(3);
        let special = |b: u8| b == b'"' || b == b'\\' || b < 0x20;
        for _ in 0..100_000 {
            let len = rng.below(40);
            // Mostly printable, now and then a special byte or one above 0x7f.
            let bytes: Vec<u8> = (0..len)
                .map(|_| match rng.below(30) {
                    0 => b'"',
                    1 => b'\\',
                    2 => rng.below(0x20) as u8,
                    3 => 0x80 + rng.below(0x80) as u8,
                    _ => 0x20 + rng.below(0x5f) as u8,
                })
                .collect();
            assert_eq!(
                string_len(&bytes),
                bytes.iter().position(|&b| special(b)),
                "{bytes:?}"
            );
        }
    }

    #[test]
    fn a_line_that_is_not_utf8_is_decoded_by_serde_json() {
        let line = b"{\"type\":\"path\",\"src\":\"\xff\"}";
        assert!(decode(line).is_err());
        assert!(!other_kind(line));
        assert!(other_kind(br#"{"type":"route","src":{"a":1},"hops":3}"#));
    }
}
