//! The systemd notification protocol (`sd_notify`): one datagram to `$NOTIFY_SOCKET`.
#![forbid(unsafe_code)]

use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};

/// Where `$NOTIFY_SOCKET` points: a path, or a name in the abstract namespace (written with a
/// leading `@`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Path(String),
    Abstract(Vec<u8>),
}

/// Parses a `$NOTIFY_SOCKET` value; other forms (e.g. `vsock:`) are refused.
pub fn parse_target(value: &str) -> io::Result<Target> {
    if let Some(name) = value.strip_prefix('@') {
        Ok(Target::Abstract(name.as_bytes().to_vec()))
    } else if value.starts_with('/') {
        Ok(Target::Path(value.to_string()))
    } else {
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("NOTIFY_SOCKET '{value}' is neither an absolute path nor @abstract"),
        ))
    }
}

/// Sends `state` (e.g. `READY=1`) to the service manager if `$NOTIFY_SOCKET` is set.
/// Returns whether it was set.
pub fn notify(state: &str) -> io::Result<bool> {
    let Some(value) = std::env::var_os("NOTIFY_SOCKET") else {
        return Ok(false);
    };
    let value = value
        .to_str()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "NOTIFY_SOCKET is not UTF-8"))?;
    send(&parse_target(value)?, state)?;
    Ok(true)
}

/// Sends one datagram with `state` to `target`.
pub fn send(target: &Target, state: &str) -> io::Result<()> {
    let sock = UnixDatagram::unbound()?;
    let addr = match target {
        Target::Path(p) => SocketAddr::from_pathname(p)?,
        Target::Abstract(name) => SocketAddr::from_abstract_name(name)?,
    };
    let n = sock.send_to_addr(state.as_bytes(), &addr)?;
    if n != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "short notification",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        assert_eq!(
            parse_target("/run/systemd/notify").unwrap(),
            Target::Path("/run/systemd/notify".into())
        );
        assert_eq!(
            parse_target("@lopa/notify").unwrap(),
            Target::Abstract(b"lopa/notify".to_vec())
        );
        assert!(parse_target("vsock:2:1").is_err());
        assert!(parse_target("relative").is_err());
    }

    #[test]
    fn sends_to_a_path_and_to_an_abstract_name() {
        let dir = std::env::temp_dir().join(format!("lopa-notify-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("notify");
        let rx = UnixDatagram::bind(&path).unwrap();
        send(&Target::Path(path.to_str().unwrap().into()), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        let _ = std::fs::remove_dir_all(&dir);

        let name = format!("lopa-notify-test-{}", std::process::id());
        let addr = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let rx = UnixDatagram::bind_addr(&addr).unwrap();
        send(&parse_target(&format!("@{name}")).unwrap(), "STOPPING=1").unwrap();
        let n = rx.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}
