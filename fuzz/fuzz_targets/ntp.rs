//! OWAMP/TWAMP/STAMP timestamps (NTP and PTP formats) as a reflector's reply carries them, read
//! against any local clock, and the Error Estimate: decoded, never a panic, and what is read
//! is what is written back.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lopa::wire::ntp::{ErrorEstimate, Format, Timestamp};

fuzz_target!(|data: &[u8]| {
    let Some((stamp, rest)) = data.split_first_chunk::<8>() else {
        return;
    };
    let t = Timestamp::from_bytes(*stamp);
    assert_eq!(t.to_bytes(), *stamp);
    let reference = rest
        .first_chunk::<8>()
        .map_or(0, |b| u64::from_be_bytes(*b));
    for format in [Format::Ntp, Format::Ptp] {
        let ns = t.to_unix_ns(format, reference);
        let _ = Timestamp::from_unix_ns(ns, format);
    }
    if let Some(raw) = rest.get(8..10) {
        let raw = u16::from_be_bytes([raw[0], raw[1]]);
        let _ = Format::of_error_estimate(raw);
        if let Ok(e) = ErrorEstimate::decode(raw) {
            assert_eq!(e.encode(), raw);
            let _ = e.seconds();
        }
        // Any bound, NaN and infinities included, as the clock's error might read.
        let seconds = f64::from_bits(reference);
        let _ = ErrorEstimate::bounding(seconds, raw & 1 == 1);
    }
});
