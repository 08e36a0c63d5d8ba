//! The keys file of the keyed modes, as owampd's and twampd's pfs file: one `KEYID SECRET`
//! per line, the secret in hex (`#` starts a comment; blank lines are skipped). The KeyID is
//! what a client names in its Set-Up-Response (UTF-8, at most 80 bytes); the secret is the
//! shared passphrase PBKDF2 derives the key from.
#![forbid(unsafe_code)]

use crate::wire::twamp_control::KEY_ID_LEN;
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::Path;

/// Secrets by KeyID.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Keys {
    by_id: BTreeMap<String, Vec<u8>>,
}

impl std::fmt::Debug for Keys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_set().entries(self.by_id.keys()).finish()
    }
}

impl Keys {
    pub fn load(path: &Path) -> Result<Keys> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the keys file {}", path.display()))?;
        Keys::parse(&text).with_context(|| format!("keys file {}", path.display()))
    }

    pub fn parse(text: &str) -> Result<Keys> {
        let mut by_id = BTreeMap::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.split('#').next().unwrap_or("").trim();
            if line.is_empty() {
                continue;
            }
            let mut words = line.split_whitespace();
            let (Some(id), Some(secret), None) = (words.next(), words.next(), words.next()) else {
                bail!(
                    "line {}: expected 'KEYID SECRET' (the secret in hex)",
                    n + 1
                );
            };
            if id.len() > KEY_ID_LEN {
                bail!("line {}: a KeyID is at most {KEY_ID_LEN} bytes", n + 1);
            }
            let secret = unhex(secret)
                .with_context(|| format!("line {}: the secret of {id} is not hex", n + 1))?;
            if by_id.insert(id.to_string(), secret).is_some() {
                bail!("line {}: KeyID {id} is given twice", n + 1);
            }
        }
        Ok(Keys { by_id })
    }

    pub fn get(&self, id: &str) -> Option<&[u8]> {
        self.by_id.get(id).map(Vec::as_slice)
    }

    /// The one key of a file that holds one (a client's keys file), or the named one.
    pub fn pick(&self, id: Option<&str>) -> Result<(&str, &[u8])> {
        match id {
            Some(id) => match self.by_id.get_key_value(id) {
                Some((k, v)) => Ok((k, v)),
                None => bail!("the keys file has no KeyID {id}"),
            },
            None => match self.by_id.len() {
                1 => {
                    let (k, v) = self.by_id.iter().next().expect("one entry");
                    Ok((k, v))
                }
                0 => bail!("the keys file holds no key"),
                _ => bail!("the keys file holds several keys: choose one with --key-id"),
            },
        }
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }
}

fn unhex(s: &str) -> Result<Vec<u8>> {
    if s.is_empty() || s.len() % 2 != 0 {
        bail!("{} hex digits (an even number is needed)", s.len());
    }
    (0..s.len())
        .step_by(2)
        .map(|i| {
            s.get(i..i + 2)
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .context("a non-hex digit")
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pfs_lines_and_names_bad_ones_by_number() {
        let k = Keys::parse("# pfs\n\nprobe-a 736563726574\nrouter  00ff # inline\n").unwrap();
        assert_eq!(k.get("probe-a"), Some(&b"secret"[..]));
        assert_eq!(k.get("router"), Some(&[0, 0xff][..]));
        assert_eq!(k.get("nobody"), None);
        assert!(k.pick(None).unwrap_err().to_string().contains("--key-id"));
        assert_eq!(k.pick(Some("router")).unwrap().1, &[0, 0xff]);
        for (bad, why) in [
            ("a\n", "line 1: expected"),
            ("a 0\n", "line 1: the secret of a is not hex"),
            ("\nb zz\n", "line 2: the secret of b"),
            ("a 00 11\n", "line 1: expected"),
            ("a 00\na 11\n", "line 2: KeyID a is given twice"),
        ] {
            let e = format!("{:#}", Keys::parse(bad).unwrap_err());
            assert!(e.contains(why), "{bad:?}: {e}");
        }
        let long = format!("{} 00\n", "k".repeat(81));
        assert!(Keys::parse(&long).is_err());
        // Non-ASCII input never panics on a char boundary.
        assert!(Keys::parse("a é0\n").is_err());
        assert_eq!(
            Keys::parse("one 01").unwrap().pick(None).unwrap(),
            ("one", &[1u8][..])
        );
    }
}
