//! The simplest UDP echo server: one datagram at a time, blocking `recv_from` and `send_to`.
//! The baseline `bench/lreflect.sh` measures lreflect against.
//!
//! Usage: simple_echo [ADDR:PORT]   (default 127.0.0.1:9001)

use std::net::UdpSocket;

fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let sock = UdpSocket::bind(&addr)?;
    let mut buf = vec![0u8; 65536];
    loop {
        let (n, from) = sock.recv_from(&mut buf)?;
        // An echo server keeps serving when one answer cannot be sent.
        let _ = sock.send_to(&buf[..n], from);
    }
}
