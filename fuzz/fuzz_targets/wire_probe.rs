//! The ludp payload (what any host may send to an lreflect echo port, and what comes back to
//! ludp) and lping's payload mark: parsed and, as lreflect does, stamped in place.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lopa::wire::lping_mark::ProbeMark;
use lopa::wire::ludp_payload::{self, ProbeRepr};

fuzz_target!(|data: &[u8]| {
    let _ = ProbeRepr::parse(data);
    let _ = ludp_payload::is_probe(data);
    let _ = ludp_payload::is_countable(data);
    let _ = ProbeMark::parse(data);
    let _ = ProbeMark::parse_ours(data, 0x5a5a_5a5a_5a5a_5a5a);
});
