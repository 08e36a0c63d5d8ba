//! TWAMP-Control messages (RFC 5357 3): everything a control client or a TWAMP server reads
//! from the other end before it knows who it talks to.
#![no_main]
use libfuzzer_sys::fuzz_target;
use lopa::wire::twamp_control::{self as c, Command};

fuzz_target!(|data: &[u8]| {
    let _ = c::Greeting::parse(data);
    let _ = c::SetUpResponse::parse(data).map(|r| r.key_name().map(str::len));
    let _ = c::ServerStart::parse(data);
    let _ = c::RequestTwSession::parse(data).map(|r| r.dscp());
    let _ = c::AcceptSession::parse(data);
    let _ = c::parse_start_sessions(data);
    let _ = c::parse_start_ack(data);
    let _ = c::StopSessions::parse(data);
    if let Some(&first) = data.first() {
        let _ = Command::from_code(first).map(Command::message_len);
    }
});
