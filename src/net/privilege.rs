//! Privileges are needed only to open sockets: once they are open, a setuid or file-capability
//! install (`setcap cap_net_raw+ep`) gives them up before the first probe.
//!
//! Identities change with `setresuid`/`setresgid` (nix), which set the saved IDs too: `setuid`
//! in a non-root setuid binary leaves the saved ID behind, from which the process could take
//! the privileged identity back. Capabilities go with `capset`, which nix does not wrap.

use nix::unistd::{getgid, getuid, setgroups, setresgid, setresuid, Gid, Uid};
use std::io;

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAPABILITY_VERSION_3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Drops every capability and a setuid identity, unless the process is plainly root (uid 0),
/// which keeps what it has: there is nothing to give up to.
pub fn drop_privileges() -> io::Result<()> {
    let uid = getuid();
    if uid.is_root() {
        return Ok(());
    }
    give_up(uid, getgid())
}

/// The user a service started as root becomes once its sockets are open.
pub const NOBODY: u32 = 65_534;

/// For a service that needs nothing after binding (lreflect): as [`drop_privileges`], and a
/// process that is plainly root becomes `nobody` (uid and gid 65534, no supplementary
/// groups) with no capabilities, as daemons started by root do (ntpd -u, dnsmasq).
pub fn drop_privileges_for_good() -> io::Result<()> {
    if !getuid().is_root() {
        return drop_privileges();
    }
    setgroups(&[])?;
    let (uid, gid) = (Uid::from_raw(NOBODY), Gid::from_raw(NOBODY));
    setresgid(gid, gid, gid)?;
    // From root to another user in all three IDs clears every capability set.
    setresuid(uid, uid, uid)?;
    Ok(())
}

/// Takes on the real identity in all three IDs (real, effective, saved) and drops every
/// capability.
fn give_up(uid: Uid, gid: Gid) -> io::Result<()> {
    setresgid(gid, gid, gid)?;
    setresuid(uid, uid, uid)?;
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: `header` and `data` are the layouts capset(2) expects for version 3 (a header
    // and two data words per set), and both outlive the call, which only reads them.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the child below runs: set by the parent test only.
    const CHILD_ENV: &str = "LOPA_TEST_PRIVILEGE_CHILD";

    /// A process that is what a non-root setuid (and setgid) binary starts as: real IDs of
    /// the user who ran it, effective and saved IDs of the binary's owner. The `Uid:` and
    /// `Gid:` lines of /proc/self/status list real, effective, saved and filesystem IDs.
    #[test]
    #[ignore = "run by drop_privileges_clears_the_saved_ids, in a process of its own"]
    fn child_of_the_saved_id_test() {
        assert_eq!(std::env::var(CHILD_ENV).as_deref(), Ok("1"));
        setresgid(
            Gid::from_raw(2000),
            Gid::from_raw(2001),
            Gid::from_raw(2001),
        )
        .unwrap();
        setresuid(
            Uid::from_raw(1000),
            Uid::from_raw(1001),
            Uid::from_raw(1001),
        )
        .unwrap();
        // The harness prints the test's name before its output, on the same line.
        print!("\n{}", id_lines());
        drop_privileges().unwrap();
        print!("{}", id_lines());
    }

    fn id_lines() -> String {
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("Uid:") || l.starts_with("Gid:"))
            .map(|l| format!("{}\n", l.split_whitespace().collect::<Vec<_>>().join(" ")))
            .collect()
    }

    /// After dropping, the saved IDs are the real ones: the process cannot take the binary
    /// owner's identity back (with `setuid`, the saved IDs stayed 1001 and 2001).
    #[test]
    fn drop_privileges_clears_the_saved_ids() {
        assert!(
            getuid().is_root(),
            "this test changes identities in a child process and must run as root"
        );
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "net::privilege::tests::child_of_the_saved_id_test",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, "1")
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(out.status.success(), "child failed: {stdout}");
        let lines: Vec<&str> = stdout
            .lines()
            .filter(|l| l.starts_with("Uid:") || l.starts_with("Gid:"))
            .collect();
        assert_eq!(
            lines,
            [
                "Uid: 1000 1001 1001 1001",
                "Gid: 2000 2001 2001 2001",
                "Uid: 1000 1000 1000 1000",
                "Gid: 2000 2000 2000 2000",
            ],
            "{stdout}"
        );
    }
}
