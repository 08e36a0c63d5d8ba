//! A UDP load generator for echo servers: keeps up to WINDOW datagrams in flight on one
//! connected socket, sending a batch per system call (UDP GSO: one `send` of up to 32
//! same-size datagrams that the kernel cuts apart; `sendmmsg` where GSO is refused or with
//! `--no-gso`) and reading the answers with `recvmmsg`, so one generator outpaces a reflector
//! and the reflector is what limits the rate. It never sleeps (so its own CPU use is 100 %). Prints one JSON object: datagrams sent,
//! answered, given up as lost, seconds, answers per second, the generator's own CPU seconds.
//!
//! Usage: udp_load ADDR:PORT [--seconds S] [--size BYTES] [--window N] [--ludp|--twamp]
//! [--direct] [--no-gso]
//! (`--ludp` sends ludp probe payloads, which lreflect stamps; `--twamp` STAMP Session-Sender
//! packets (sequence number, T1, SSID 0; 44 bytes unless `--size` says more), which a
//! TWAMP-Light / STAMP reflector answers, with `--direct` an RFC 8972 Direct Measurement TLV
//! after them (60 bytes unless `--size` says more); else the payload is zeros with a leading
//! 'x', which no one stamps.)

use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

/// Datagrams per system call.
const BATCH: usize = 32;
/// `UDP_SEGMENT` (linux/udp.h): the GSO segment size of a UDP socket.
const UDP_SEGMENT: i32 = 103;
/// No answer for this long: whatever is in flight is lost.
const GIVE_UP: Duration = Duration::from_millis(20);

fn usage(msg: &str) -> ! {
    eprintln!("udp_load: {msg}");
    eprintln!(
        "usage: udp_load ADDR:PORT [--seconds S] [--size BYTES] [--window N] [--ludp|--twamp] [--direct] \
         [--no-gso]"
    );
    std::process::exit(2);
}

fn cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let mut to: Option<SocketAddr> = None;
    let (mut seconds, mut size, mut window, mut ludp, mut twamp, mut gso) =
        (5.0f64, 0usize, 128usize, false, false, true);
    let mut direct = false;
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match a.as_str() {
            "--seconds" => {
                seconds = value("--seconds")
                    .parse()
                    .unwrap_or_else(|_| usage("bad --seconds"))
            }
            "--size" => {
                size = value("--size")
                    .parse()
                    .unwrap_or_else(|_| usage("bad --size"))
            }
            "--window" => {
                window = value("--window")
                    .parse()
                    .unwrap_or_else(|_| usage("bad --window"))
            }
            "--ludp" => ludp = true,
            "--twamp" => twamp = true,
            "--direct" => direct = true,
            "--no-gso" => gso = false,
            s => {
                to = Some(
                    s.parse()
                        .unwrap_or_else(|_| usage(&format!("'{s}' is not ADDR:PORT"))),
                )
            }
        }
    }
    let to = to.unwrap_or_else(|| usage("no ADDR:PORT"));
    if ludp && twamp {
        usage("--ludp or --twamp, not both");
    }
    let tlv = if direct {
        let mut t = Vec::new();
        lopa::wire::stamp_tlv::Request {
            direct: true,
            ..Default::default()
        }
        .write(&mut t);
        t
    } else {
        Vec::new()
    };
    if direct && !twamp {
        usage("--direct needs --twamp");
    }
    if size == 0 {
        size = if twamp {
            lopa::wire::twamp::STAMP_LEN + tlv.len()
        } else {
            32
        };
    }
    if twamp && size < lopa::wire::twamp::STAMP_LEN + tlv.len() {
        usage("--twamp needs --size 44 or more (60 with --direct)");
    }
    if ludp && size < lopa::wire::ludp_payload::REFLECTOR_LEN {
        usage("--ludp needs --size 52 or more");
    }
    if size == 0 || window == 0 {
        usage("--size and --window must be at least 1");
    }

    let bind = if to.is_ipv4() { "0.0.0.0:0" } else { "[::]:0" };
    let sock = UdpSocket::bind(bind)?;
    sock.connect(to)?;
    sock.set_nonblocking(true)?;
    let fd = sock.as_raw_fd();

    // The batch's datagrams back to back: one GSO send, or one iovec each for sendmmsg.
    let mut out = vec![0u8; BATCH * size];
    for d in out.chunks_mut(size) {
        d[0] = b'x';
        if let Some(t) = d.get_mut(lopa::wire::twamp::STAMP_LEN..).filter(|_| direct) {
            t[..tlv.len()].copy_from_slice(&tlv);
        }
    }
    // Segments of `size` bytes; a kernel or device without UDP GSO refuses this or the send.
    gso = gso
        && lopa::net::socket::setsockopt_int(fd, libc::SOL_UDP, UDP_SEGMENT, size as i32).is_ok();
    let mut inb = vec![vec![0u8; size.max(2048)]; 64];
    // SAFETY: iovec and mmsghdr are plain C structs; all-zero is valid.
    let zero_msg: libc::mmsghdr = unsafe { std::mem::zeroed() };
    let mut out_iov: Vec<libc::iovec> = out
        .chunks_mut(size)
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    let mut in_iov: Vec<libc::iovec> = inb
        .iter_mut()
        .map(|b| libc::iovec {
            iov_base: b.as_mut_ptr().cast(),
            iov_len: b.len(),
        })
        .collect();
    let mut out_msgs = vec![zero_msg; BATCH];
    let mut in_msgs = vec![zero_msg; in_iov.len()];
    for (m, iov) in out_msgs.iter_mut().zip(out_iov.iter_mut()) {
        m.msg_hdr.msg_iov = iov;
        m.msg_hdr.msg_iovlen = 1;
    }
    for (m, iov) in in_msgs.iter_mut().zip(in_iov.iter_mut()) {
        m.msg_hdr.msg_iov = iov;
        m.msg_hdr.msg_iovlen = 1;
    }

    let cpu0 = cpu_seconds();
    let start = Instant::now();
    let end = start + Duration::from_secs_f64(seconds);
    let (mut sent, mut received, mut lost, mut seq) = (0u64, 0u64, 0u64, 0u64);
    let mut last_answer = Instant::now();
    while Instant::now() < end {
        let in_flight = sent.saturating_sub(received + lost) as usize;
        let room = window.saturating_sub(in_flight).min(BATCH);
        if room > 0 {
            if ludp || twamp {
                let now_ns = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_nanos() as u64)
                    .unwrap_or(0);
                for b in out.chunks_mut(size).take(room).filter(|_| twamp) {
                    lopa::wire::twamp::SenderPacket {
                        seq: seq as u32,
                        timestamp: lopa::wire::ntp::Timestamp::from_unix_ns(
                            now_ns,
                            lopa::wire::ntp::Format::Ntp,
                        ),
                        error: 0x0001,
                        ssid: Some(0),
                    }
                    .write(b)
                    .expect("44 bytes or more");
                    seq += 1;
                }
                for b in out.chunks_mut(size).take(room).filter(|_| ludp) {
                    seq += 1;
                    lopa::wire::ludp_payload::ProbeRepr {
                        flow: 0,
                        seq,
                        sent_ns: now_ns,
                        cookie: 1,
                        target: 0,
                    }
                    .emit(b);
                }
            }
            if gso {
                // SAFETY: out holds at least room * size bytes.
                let n = unsafe { libc::send(fd, out.as_ptr().cast(), room * size, 0) };
                if n > 0 {
                    sent += room as u64;
                } else if n < 0
                    && std::io::Error::last_os_error().raw_os_error() != Some(libc::EAGAIN)
                {
                    // E.g. EIO: no checksum offload on the way; send one by one from now on.
                    gso = false;
                    lopa::net::socket::setsockopt_int(fd, libc::SOL_UDP, UDP_SEGMENT, 0)?;
                }
            } else {
                // SAFETY: the messages point at live buffers of the stated lengths.
                let n = unsafe { libc::sendmmsg(fd, out_msgs.as_mut_ptr(), room as u32, 0) };
                if n > 0 {
                    sent += n as u64;
                }
            }
        }
        for m in in_msgs.iter_mut() {
            m.msg_hdr.msg_flags = 0;
        }
        // SAFETY: as above.
        let n = unsafe {
            libc::recvmmsg(
                fd,
                in_msgs.as_mut_ptr(),
                in_msgs.len() as u32,
                libc::MSG_DONTWAIT,
                std::ptr::null_mut(),
            )
        };
        if n > 0 {
            received += n as u64;
            // Answers to datagrams already given up for lost: they were late, not lost.
            lost = lost.min(sent - received);
            last_answer = Instant::now();
        } else if room == 0 && last_answer.elapsed() > GIVE_UP {
            lost += sent.saturating_sub(received + lost);
            last_answer = Instant::now();
        }
        // No sleeping while waiting: a generator that sleeps until the next answer leaves the
        // reflector idle too, and on a VM the wake-ups (of both) cost more than the work.
    }
    let elapsed = start.elapsed().as_secs_f64();
    let cpu = cpu_seconds() - cpu0;
    println!(
        "{{\"gso\":{gso},\"sent\":{sent},\"received\":{received},\"lost\":{lost},\"seconds\":{elapsed:.6},\"pps\":{:.1},\"cpu_s\":{cpu:.3}}}",
        received as f64 / elapsed
    );
    Ok(())
}
