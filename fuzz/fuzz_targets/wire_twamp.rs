//! TWAMP-Light / STAMP test packets: a Session-Sender's request as lreflect reads it (and the
//! reply it builds over it), a Session-Reflector's reply as ltwamp reads it, and the NTP Error
//! Estimate both carry.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lopa::wire::ntp::ErrorEstimate;
use lopa::wire::twamp::{self, ReflectorPacket, SenderPacket};

fuzz_target!(|data: &[u8]| {
    let _ = SenderPacket::parse(data);
    let _ = ReflectorPacket::parse(data);
    let _ = twamp::reply_len(data.len());
    if data.len() >= 2 {
        let _ = ErrorEstimate::decode(u16::from_be_bytes([data[0], data[1]]));
    }
});
