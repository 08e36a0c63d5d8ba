//! For the lab tests only: `LOPA_LWATCH_TEST_STOP` stops lwatch (SIGSTOP) at set points of
//! its start, so a test can make changes exactly there.
#![forbid(unsafe_code)]

/// For the lab tests only: `LOPA_LWATCH_TEST_STOP` in lwatch's environment lists (comma
/// separated) where it stops itself (SIGSTOP) at the start: `read` after its first read of the
/// state, `subscribed` after subscribing, `dumped` after the second read, `mid-dump` after the
/// third datagram of a dump attempt that takes more than three (a change there interrupts
/// it: thousands of addresses make one); `mid-dump:N` stops in each of the first N such
/// attempts. A test makes changes there, then lets it go on (SIGCONT).
pub(super) fn test_stop(at: &str) {
    if test_stop_count(at).is_some() {
        stop_self();
    }
}

pub(super) fn stop_self() {
    let _ = nix::sys::signal::raise(nix::sys::signal::Signal::SIGSTOP);
}

/// How many times `LOPA_LWATCH_TEST_STOP` asks to stop at `at` (`at` or `at:N`), if at all.
pub(super) fn test_stop_count(at: &str) -> Option<u32> {
    let points = std::env::var_os("LOPA_LWATCH_TEST_STOP")?;
    stop_count(&points.to_string_lossy(), at)
}

/// How many times the comma-separated `points` ask to stop at `at` (`at` or `at:N`; a count
/// that is not a number is 1).
fn stop_count(points: &str, at: &str) -> Option<u32> {
    points.split(',').find_map(|p| {
        let (name, count) = p.split_once(':').unwrap_or((p, "1"));
        (name == at).then(|| count.parse().unwrap_or(1))
    })
}

/// The `mid-dump` stops still to make.
pub(super) static MID_DUMP_STOPS: std::sync::atomic::AtomicU32 =
    std::sync::atomic::AtomicU32::new(0);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_points_name_where_and_how_often() {
        assert_eq!(stop_count("read", "read"), Some(1));
        assert_eq!(stop_count("read,mid-dump:3", "mid-dump"), Some(3));
        assert_eq!(stop_count("mid-dump:x", "mid-dump"), Some(1));
        assert_eq!(stop_count("read,dumped", "subscribed"), None);
        assert_eq!(stop_count("", "read"), None);
    }
}
