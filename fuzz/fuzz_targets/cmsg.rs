//! recvmsg control messages the reflector decodes by hand from its `recvmmsg` buffers
//! (timestamps, TTL, TOS, packet info), and socket addresses as the kernel lays them out.
//! (The probes' control messages are decoded by nix.)
#![no_main]
use libfuzzer_sys::fuzz_target;
use lopa::net::cmsg;
use lopa::reflect::batch;

fuzz_target!(|data: &[u8]| {
    let _ = batch::parse_control(data);
    let _ = cmsg::parse_sockaddr_ip(data);
});
