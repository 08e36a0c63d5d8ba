//! Shell patterns over interface names (`eth*`, `veth[0-3]`), as lpassive's and lwatch's
//! `--interface` take them: `fnmatch(3)` with no flags, which neither std nor nix offers.

use std::ffi::CStr;
use std::ffi::CString;

/// Whether `name` matches the shell pattern `pattern` (`fnmatch(3)`, no flags: `*`, `?`,
/// `[...]` classes and ranges, `\` escapes). A name with a NUL byte matches nothing.
pub fn matches(pattern: &CStr, name: &str) -> bool {
    let Ok(name) = CString::new(name) else {
        return false;
    };
    // SAFETY: both are NUL-terminated strings that outlive the call, which only reads them.
    unsafe { libc::fnmatch(pattern.as_ptr(), name.as_ptr(), 0) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_patterns_match_interface_names() {
        let p = |s: &str| CString::new(s).unwrap();
        assert!(matches(&p("eth*"), "eth0"));
        assert!(matches(&p("veth[0-3]"), "veth2"));
        assert!(!matches(&p("veth[0-3]"), "veth4"));
        assert!(matches(&p("br-?"), "br-a"));
        assert!(!matches(&p("eth*"), "lo"));
        assert!(!matches(&p("*"), "a\0b"));
    }
}
