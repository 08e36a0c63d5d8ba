//! Which interfaces to watch: names and shell glob patterns (`fnmatch(3)`, as the shell
//! matches them), or every interface but loopback.

use crate::netlink::parse::Link;
use anyhow::{bail, Result};
use std::ffi::CString;

/// The interfaces a run watches.
#[derive(Debug, Clone)]
pub struct Selection {
    patterns: Vec<(String, CString)>,
    all: bool,
}

fn is_glob(s: &str) -> bool {
    s.contains(['*', '?', '['])
}

impl Selection {
    /// `patterns` empty: every interface (but loopback unless `all`).
    pub fn new(patterns: &[String], all: bool) -> Result<Selection> {
        let mut out = Vec::new();
        for p in patterns {
            let Ok(c) = CString::new(p.as_str()) else {
                bail!("interface pattern {p:?} contains a NUL byte");
            };
            if p.is_empty() || (!is_glob(p) && p.len() > 15) {
                bail!("'{p}' is not an interface name (1 to 15 characters, or a glob pattern)");
            }
            out.push((p.clone(), c));
        }
        Ok(Selection { patterns: out, all })
    }

    pub fn matches(&self, link: &Link) -> bool {
        if self.patterns.is_empty() {
            return self.all || !link.loopback();
        }
        self.patterns
            .iter()
            .any(|(_, p)| crate::net::glob::matches(p, &link.name))
    }

    /// Every plain name (no glob characters) must name an existing interface: a typo is an
    /// error, not a silent run that watches nothing. Patterns may match nothing yet.
    pub fn check_names(&self, links: &[Link]) -> Result<()> {
        for (p, _) in &self.patterns {
            if !is_glob(p) && !links.iter().any(|l| l.name == *p) {
                bail!("no interface named '{p}' (see 'ip link' for the names here)");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(name: &str, flags: u32) -> Link {
        Link {
            index: 1,
            flags,
            name: name.into(),
            mtu: None,
            oper: None,
            carrier: false,
            counters: None,
        }
    }

    #[test]
    fn default_is_all_but_loopback() {
        let s = Selection::new(&[], false).unwrap();
        assert!(s.matches(&link("eth0", 0x1003)));
        assert!(!s.matches(&link("lo", 0x49)));
        assert!(Selection::new(&[], true)
            .unwrap()
            .matches(&link("lo", 0x49)));
    }

    #[test]
    fn names_and_globs() {
        let s = Selection::new(&["veth[0-9]*".into(), "lo".into(), "e?h0".into()], false).unwrap();
        assert!(s.matches(&link("veth12", 0)));
        assert!(!s.matches(&link("vethx", 0)));
        assert!(
            s.matches(&link("lo", 0x49)),
            "an explicit loopback is watched"
        );
        assert!(s.matches(&link("eth0", 0)));
        assert!(!s.matches(&link("eth1", 0)));
    }

    #[test]
    fn plain_names_must_exist_patterns_need_not() {
        let links = [link("eth0", 0), link("lo", 0x49)];
        let s = Selection::new(&["eth0".into(), "wl*".into()], false).unwrap();
        assert!(s.check_names(&links).is_ok());
        let s = Selection::new(&["eth9".into()], false).unwrap();
        let e = s.check_names(&links).unwrap_err().to_string();
        assert!(e.contains("no interface named 'eth9'"), "{e}");
        assert!(Selection::new(&["a\0b".into()], false).is_err());
        assert!(Selection::new(&["".into()], false).is_err());
        assert!(Selection::new(&["a-name-longer-than-15".into()], false).is_err());
    }
}
