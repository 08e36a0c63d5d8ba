//! ICMP and ICMPv6 messages as lping's sockets receive them, and the IP packet an ICMP error
//! quotes: parsed, never a panic (checksums pass under `cfg(fuzzing)`).
#![no_main]
use libfuzzer_sys::fuzz_target;
use lopa::wire::icmp::{IcmpRepr, Quoted, Version};

fuzz_target!(|data: &[u8]| {
    for version in [Version::V4, Version::V6] {
        let _ = IcmpRepr::parse(version, data, true);
        let _ = Quoted::parse(version, data);
    }
});
