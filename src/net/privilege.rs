//! Privileges are needed only to open sockets: once they are open, a setuid or file-capability
//! install (`setcap cap_net_raw+ep`) gives them up before the first probe.

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
    // SAFETY: these calls take no pointers and cannot fail.
    let (uid, euid, gid, egid) = unsafe {
        (
            libc::getuid(),
            libc::geteuid(),
            libc::getgid(),
            libc::getegid(),
        )
    };
    if uid == 0 {
        return Ok(());
    }
    give_up(uid, euid, gid, egid)
}

/// The user a service started as root becomes once its sockets are open.
pub const NOBODY: u32 = 65_534;

/// For a service that needs nothing after binding (lreflect): as [`drop_privileges`], and a
/// process that is plainly root becomes `nobody` (uid and gid 65534, no supplementary
/// groups) with no capabilities, as daemons started by root do (ntpd -u, dnsmasq).
pub fn drop_privileges_for_good() -> io::Result<()> {
    // SAFETY: plain syscall.
    if unsafe { libc::getuid() } != 0 {
        return drop_privileges();
    }
    // SAFETY: setgroups with no groups and a null list is valid.
    if unsafe { libc::setgroups(0, std::ptr::null()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: plain syscalls.
    if unsafe { libc::setgid(NOBODY) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // setuid from root to another user clears every capability set.
    // SAFETY: plain syscall.
    if unsafe { libc::setuid(NOBODY) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Takes on the real identity and drops every capability.
fn give_up(uid: u32, euid: u32, gid: u32, egid: u32) -> io::Result<()> {
    if egid != gid {
        // SAFETY: plain syscall.
        if unsafe { libc::setgid(gid) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    if euid != uid {
        // SAFETY: plain syscall.
        if unsafe { libc::setuid(uid) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    let header = CapHeader {
        version: CAPABILITY_VERSION_3,
        pid: 0,
    };
    let data = [CapData::default(); 2];
    // SAFETY: header and data are the layouts capset(2) expects for version 3.
    let rc = unsafe { libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()) };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}
