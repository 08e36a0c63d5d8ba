//! IPv4 and IPv6 headers (raw sockets hand lping and ltcp --syn whole packets) and the TCP
//! header of an answer to a raw SYN.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lopa::wire::ip::{Ipv4Repr, Ipv6Repr};
use lopa::wire::tcp::TcpRepr;

fuzz_target!(|data: &[u8]| {
    if let Ok((_, rest)) = Ipv4Repr::parse(data) {
        let _ = TcpRepr::parse(rest);
    }
    if let Ok((_, rest)) = Ipv6Repr::parse(data) {
        let _ = TcpRepr::parse(rest);
    }
    let _ = TcpRepr::parse(data);
});
