//! recvmsg control messages (timestamps, TTL, TOS, IP_RECVERR with the offender's address,
//! packet info, drop counts) as the kernel would lay them out.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lopa::net::cmsg;

fuzz_target!(|data: &[u8]| {
    let _ = cmsg::parse(data);
    let _ = cmsg::parse_sockaddr_ip(data);
});
