//! Value parsers of the flags: durations as ping takes them, rates, counts, numbers in decimal
//! or hex, DSCP classes, histogram buckets.

use std::time::Duration;

/// Highest `--rate`: beyond what one socket takes in.
pub const MAX_RATE: f64 = 1_000_000.0;

/// `--buckets`: bounds in seconds, strictly ascending.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets(pub Vec<f64>);

/// Parses `--buckets`: durations (`50us,1ms,0.5,2s`), strictly ascending.
pub fn parse_buckets(s: &str) -> Result<Buckets, String> {
    let mut bounds: Vec<f64> = Vec::new();
    for part in s.split(',').map(str::trim) {
        let secs = parse_positive_duration(part)
            .map_err(|e| format!("bucket '{part}': {e}"))?
            .as_secs_f64();
        if bounds.last().is_some_and(|last| *last >= secs) {
            return Err(format!(
                "buckets must be strictly ascending ('{part}' is not above the one before)"
            ));
        }
        bounds.push(secs);
    }
    Ok(Buckets(bounds))
}

pub use crate::engine::MAX_DURATION;

/// Shortest interval and timeout: the event loop schedules with millisecond resolution.
pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

/// A duration as ping takes it (`0.2` seconds) or with a unit (`200ms`, `30s`, `5m`, `1h`).
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let d = match s.parse::<f64>() {
        Ok(secs) => Duration::try_from_secs_f64(secs)
            .map_err(|_| format!("'{s}' is not a valid number of seconds"))?,
        Err(_) => humantime::parse_duration(s).map_err(|_| {
            format!("'{s}' is not a duration: use seconds (0.2) or a unit (200ms, 30s, 5m)")
        })?,
    };
    if d > MAX_DURATION {
        return Err(format!("'{s}' is too long: at most 365 days"));
    }
    Ok(d)
}

pub fn parse_positive_duration(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d.is_zero() {
        return Err("must be greater than 0".into());
    }
    Ok(d)
}

pub fn parse_interval(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if d < MIN_INTERVAL {
        return Err("must be at least 1ms".into());
    }
    Ok(d)
}

/// A value that means nothing when empty (an interface pattern, a command).
pub fn parse_non_empty(s: &str) -> Result<String, String> {
    if s.trim().is_empty() {
        return Err("must not be empty".into());
    }
    Ok(s.to_string())
}

/// A reporting period: 0 (off) or at least 1 ms (a shorter one would be all the loop does).
pub fn parse_period(s: &str) -> Result<Duration, String> {
    let d = parse_duration(s)?;
    if !d.is_zero() && d < MIN_INTERVAL {
        return Err("must be 0 (off) or at least 1ms".into());
    }
    Ok(d)
}

/// Probes per second: a positive number up to [`MAX_RATE`].
pub fn parse_rate(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 && v <= MAX_RATE => Ok(v),
        Ok(v) if v.is_finite() && v > MAX_RATE => Err(format!("{s} is too high: at most 1000000")),
        _ => Err(format!(
            "'{s}' is not a positive number of probes per second"
        )),
    }
}

pub fn parse_count(s: &str) -> Result<u64, String> {
    match s.parse::<u64>() {
        Ok(0) => Err("must be at least 1".into()),
        Ok(n) => Ok(n),
        Err(_) => Err(format!("'{s}' is not a whole number")),
    }
}

pub fn parse_percent(s: &str) -> Result<f64, String> {
    let v = parse_non_negative(s)?;
    if v > 100.0 {
        return Err(format!("{v} is not a percentage between 0 and 100"));
    }
    Ok(v)
}

pub fn parse_non_negative(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if v.is_finite() && v >= 0.0 => Ok(v),
        _ => Err(format!("'{s}' is not a non-negative number")),
    }
}

fn parse_int(s: &str) -> Result<u64, String> {
    let r = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    };
    r.map_err(|_| format!("'{s}' is not a number (decimal or 0x hex)"))
}

/// A byte in decimal or hex (`-Q 0x10`, which clap's integer parser rejects).
pub fn parse_u8(s: &str) -> Result<u8, String> {
    let v = parse_int(s)?;
    u8::try_from(v).map_err(|_| format!("{s} is out of range 0-255"))
}

pub fn parse_u32(s: &str) -> Result<u32, String> {
    let v = parse_int(s)?;
    u32::try_from(v).map_err(|_| format!("{s} is out of range 0-4294967295"))
}

/// A DSCP class by name (EF, AF41, CS1, LE, VA, BE/DF/DEFAULT; any case) or number 0-63.
pub fn parse_dscp(s: &str) -> Result<u8, String> {
    crate::dscp::parse(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_seconds_or_units() {
        assert_eq!(parse_duration("0.2"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("200ms"), Ok(Duration::from_millis(200)));
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("1"), Ok(Duration::from_secs(1)));
        assert!(parse_duration("-1").is_err());
        assert!(parse_duration("soon")
            .unwrap_err()
            .contains("not a duration"));
        assert!(parse_positive_duration("0").is_err());
        assert!(parse_duration("1e19").unwrap_err().contains("too long"));
        assert!(parse_duration("366d").is_err());
        assert_eq!(parse_period("0"), Ok(Duration::ZERO));
        assert_eq!(parse_period("1ms"), Ok(Duration::from_millis(1)));
        assert!(parse_period("1ns").unwrap_err().contains("at least 1ms"));
        assert_eq!(parse_interval("0.5ms"), Err("must be at least 1ms".into()));
        assert_eq!(parse_count("0"), Err("must be at least 1".into()));
        assert_eq!(parse_rate("2000"), Ok(2000.0));
        assert_eq!(parse_rate("0.5"), Ok(0.5));
        assert!(parse_rate("0")
            .unwrap_err()
            .contains("not a positive number"));
        assert!(parse_rate("-5").is_err());
        assert!(parse_rate("inf").is_err());
        assert!(parse_rate("2e6").unwrap_err().contains("too high"));
    }
    #[test]
    fn tos_takes_hex() {
        assert_eq!(parse_u8("0x10"), Ok(16));
        assert_eq!(parse_u8("184"), Ok(184));
        assert!(parse_u8("256").is_err());
        assert!(parse_u8("0xzz").is_err());
        assert_eq!(parse_u32("0xff00"), Ok(0xff00));
    }
    #[test]
    fn dscp_names_follow_rfc_4594() {
        assert_eq!(parse_dscp("EF"), Ok(46));
        assert_eq!(parse_dscp("af41"), Ok(34));
        assert_eq!(parse_dscp("AF11"), Ok(10));
        assert_eq!(parse_dscp("CS1"), Ok(8));
        assert_eq!(parse_dscp("cs7"), Ok(56));
        assert_eq!(parse_dscp("LE"), Ok(1));
        assert_eq!(parse_dscp("0x2e"), Ok(46));
        assert_eq!(parse_dscp("63"), Ok(63));
        assert!(parse_dscp("64").is_err());
        assert!(parse_dscp("AF44").is_err());
        assert!(parse_dscp("CS8").is_err());
        assert!(parse_dscp("gold").unwrap_err().contains("not a DSCP class"));
    }
    #[test]
    fn percent_bounds() {
        assert_eq!(parse_percent("12.5"), Ok(12.5));
        assert!(parse_percent("101").is_err());
        assert!(parse_percent("nan").is_err());
    }
}
