//! Randomness for what must differ between runs and processes: cookies, source ports, the
//! SYN prober's sequence numbers.

/// 64 random bits from the kernel (falls back to time and pid if getrandom fails).
pub fn random_u64() -> u64 {
    let mut b = [0u8; 8];
    // SAFETY: b is 8 writable bytes.
    let n = unsafe { libc::getrandom(b.as_mut_ptr().cast(), 8, 0) };
    if n == 8 {
        u64::from_ne_bytes(b)
    } else {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        t ^ (u64::from(std::process::id()) << 32)
    }
}

/// `N` bytes from the kernel's random generator, or its error: key material (TWAMP-Control's
/// session keys, IVs, challenges) has no fallback.
pub fn bytes<const N: usize>() -> std::io::Result<[u8; N]> {
    let mut b = [0u8; N];
    let mut at = 0;
    while at < N {
        // SAFETY: writes at most N - at bytes into the rest of `b`.
        let n = unsafe { libc::getrandom(b[at..].as_mut_ptr().cast(), N - at, 0) };
        if n < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() == std::io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        at += n as usize;
    }
    Ok(b)
}
