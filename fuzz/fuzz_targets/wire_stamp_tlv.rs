//! STAMP TLVs (RFC 8972): a reflector processing a request's TLVs in place (it must keep the
//! length and never panic), and a sender reading an answer's.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lopa::wire::stamp_tlv::{self, Answer, ReflectorInfo};

fuzz_target!(|data: &[u8]| {
    let _ = Answer::parse(data);
    let _ = stamp_tlv::iter(data).count();
    let info = ReflectorInfo {
        tos: data.first().copied(),
        counters: (data.len() % 2 == 0).then_some((7, 5)),
        sync: stamp_tlv::sync::NTP,
        method_in: stamp_tlv::method::SW_LOCAL,
        method_out: stamp_tlv::method::SW_LOCAL,
        src: "[::ffff:10.0.0.1]:40000".parse().unwrap(),
        dst: "[fd00::1]:862".parse().unwrap(),
    };
    let mut answer = data.to_vec();
    let _ = stamp_tlv::reflect(&mut answer, &info);
    assert_eq!(answer.len(), data.len());
    let _ = Answer::parse(&answer);
});
