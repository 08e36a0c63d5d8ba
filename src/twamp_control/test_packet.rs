//! The test packets of a keyed TWAMP session (RFC 5357 4.1.2 and 4.2.1, on RFC 4656 4.1.2):
//! their layouts, the session's test keys, and the sealing and opening of each packet.
//!
//! ```text
//! Session-Sender                       Session-Reflector
//!  0..4    sequence number              0..4    sequence number
//!  4..16   MBZ                          4..16   MBZ
//! 16..24   timestamp T1                16..24   timestamp T3
//! 24..26   error estimate              24..26   error estimate
//! 26..32   MBZ                         26..32   MBZ
//! 32..48   HMAC                        32..40   receive timestamp T2
//! 48..     padding                     40..48   MBZ
//!                                      48..52   sender sequence number
//!                                      52..64   MBZ
//!                                      64..72   sender timestamp T1
//!                                      72..74   sender error estimate
//!                                      74..80   MBZ
//!                                      80       sender TTL
//!                                      81..96   MBZ
//!                                      96..112  HMAC
//!                                     112..     padding
//! ```
//! The session's keys come from the control session's and its SID: the test AES key is the
//! AES session key encrypted (ECB) under the SID, the test HMAC key the HMAC session key
//! encrypted (CBC, zero IV) under the SID. Authenticated mode encrypts the first block (ECB)
//! and authenticates it; encrypted mode encrypts the blocks before the HMAC (CBC, zero IV:
//! 2 blocks for the sender, 6 for the reflector) and authenticates them. The HMAC is
//! HMAC-SHA1 over the clear text, truncated to 16 bytes, and is itself sent in the clear.
//! (So perfSONAR's twampd does it; the reflector's authenticated HMAC covers the first block
//! only, as the sender's does.)
#![forbid(unsafe_code)]

use crate::wire::ntp::Timestamp;
use crate::wire::twamp::ReflectorPacket;
use crate::wire::twamp_control::Mode;
use aes::cipher::{BlockCipherEncrypt, BlockModeDecrypt, BlockModeEncrypt};
use aes::cipher::{InnerIvInit, KeyIvInit};
use aes::Aes128;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

type HmacSha1 = Hmac<Sha1>;

/// A keyed Session-Sender packet's length without padding.
pub const SENDER_LEN: usize = 48;
/// A keyed Session-Reflector packet's length without padding.
pub const REFLECTOR_LEN: usize = 112;
const SENDER_HMAC: usize = 32;
const REFLECTOR_HMAC: usize = 96;
const HMAC_LEN: usize = 16;

/// The keys of one keyed test session, and its mode.
#[derive(Clone)]
pub struct TestKeys {
    mode: Mode,
    aes: Aes128,
    hmac_key: [u8; 32],
}

impl std::fmt::Debug for TestKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TestKeys({:?})", self.mode)
    }
}

/// A keyed test packet that is too short or whose HMAC does not verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Refused;

impl TestKeys {
    /// The keys of the session `sid` of a control session in `mode` with these session keys;
    /// `None` in unauthenticated mode (the test packets carry no keys).
    pub fn derive(
        mode: Mode,
        aes_session: &[u8; 16],
        hmac_session: &[u8; 32],
        sid: &[u8; 16],
    ) -> Option<TestKeys> {
        if mode == Mode::Unauthenticated {
            return None;
        }
        let by_sid = Aes128::new(sid.into());
        let mut aes_key = aes::Block::from(*aes_session);
        by_sid.encrypt_block(&mut aes_key);
        let mut hmac_key = *hmac_session;
        cbc::Encryptor::<Aes128>::new(sid.into(), &[0u8; 16].into())
            .encrypt_blocks(as_blocks(&mut hmac_key));
        Some(TestKeys {
            mode,
            aes: Aes128::new(&aes_key),
            hmac_key,
        })
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// How many bytes before the HMAC are ciphered and authenticated, of `clear` bytes.
    fn covered(&self, clear: usize) -> usize {
        match self.mode {
            Mode::Encrypted => clear,
            _ => 16,
        }
    }

    fn mac(&self, clear: &[u8]) -> [u8; HMAC_LEN] {
        let mut m = <HmacSha1 as KeyInit>::new_from_slice(&self.hmac_key)
            .expect("HMAC takes a key of any length");
        m.update(clear);
        let mut out = [0u8; HMAC_LEN];
        out.copy_from_slice(&m.finalize().into_bytes()[..HMAC_LEN]);
        out
    }

    /// Authenticates and encrypts a packet whose first `hmac_at + 16` bytes are its clear
    /// layout (HMAC field included, overwritten).
    fn seal(&self, buf: &mut [u8], hmac_at: usize) {
        let n = self.covered(hmac_at);
        let tag = self.mac(&buf[..n]);
        buf[hmac_at..hmac_at + HMAC_LEN].copy_from_slice(&tag);
        // One block under CBC with a zero IV is that block under ECB.
        cbc::Encryptor::<Aes128>::inner_iv_init(self.aes.clone(), &[0u8; 16].into())
            .encrypt_blocks(as_blocks(&mut buf[..n]));
    }

    /// The clear layout of a sealed packet's first `N` bytes (HMAC at `N - 16`).
    fn open<const N: usize>(&self, buf: &[u8]) -> Result<[u8; N], Refused> {
        let mut clear: [u8; N] = buf
            .get(..N)
            .ok_or(Refused)?
            .try_into()
            .map_err(|_| Refused)?;
        let hmac_at = N - HMAC_LEN;
        let n = self.covered(hmac_at);
        cbc::Decryptor::<Aes128>::inner_iv_init(self.aes.clone(), &[0u8; 16].into())
            .decrypt_blocks(as_blocks(&mut clear[..n]));
        let mut m = <HmacSha1 as KeyInit>::new_from_slice(&self.hmac_key)
            .expect("HMAC takes a key of any length");
        m.update(&clear[..n]);
        m.verify_truncated_left(&clear[hmac_at..])
            .map_err(|_| Refused)?;
        Ok(clear)
    }

    /// Writes and seals a Session-Sender packet into `buf` (at least [`SENDER_LEN`] bytes;
    /// what follows is padding, left as it is).
    pub fn seal_sender(&self, buf: &mut [u8], seq: u32, t1: Timestamp, error: u16) {
        let b = &mut buf[..SENDER_LEN];
        b.fill(0);
        b[0..4].copy_from_slice(&seq.to_be_bytes());
        b[16..24].copy_from_slice(&t1.to_bytes());
        b[24..26].copy_from_slice(&error.to_be_bytes());
        self.seal(b, SENDER_HMAC);
    }

    /// The sequence number, T1 and error estimate of a sealed Session-Sender packet.
    pub fn open_sender(&self, buf: &[u8]) -> Result<(u32, Timestamp, u16), Refused> {
        let c = self.open::<SENDER_LEN>(buf)?;
        Ok((u32_at(&c, 0), ts_at(&c, 16), u16_at(&c, 24)))
    }

    /// Builds and seals, over the sealed Session-Sender packet in `buf[..request_len]`, the
    /// reflector's reply: number `seq`, error estimate `error`, T2 `rx`, T3 `tx` (written now:
    /// the packet is sealed before it is queued), the request's TTL. Returns the reply's
    /// length (the request's, at least [`REFLECTOR_LEN`]: padding beyond stays the
    /// request's), or `Refused` (and `buf` as it was) for a request that does not verify or a
    /// `buf` too small.
    pub fn reflect_in_place(
        &self,
        buf: &mut [u8],
        request_len: usize,
        r: &crate::wire::twamp::Reflection,
        tx: Timestamp,
    ) -> Result<usize, Refused> {
        let len = request_len.max(REFLECTOR_LEN);
        if buf.len() < len || request_len < SENDER_LEN {
            return Err(Refused);
        }
        let sender = self.open::<SENDER_LEN>(&buf[..request_len])?;
        let mut out = [0u8; REFLECTOR_LEN];
        out[0..4].copy_from_slice(&r.seq.to_be_bytes());
        out[16..24].copy_from_slice(&tx.to_bytes());
        out[24..26].copy_from_slice(&r.error.to_be_bytes());
        out[32..40].copy_from_slice(&r.receive_timestamp.to_bytes());
        out[48..52].copy_from_slice(&sender[0..4]);
        out[64..72].copy_from_slice(&sender[16..24]);
        out[72..74].copy_from_slice(&sender[24..26]);
        out[80] = r.ttl;
        self.seal(&mut out, REFLECTOR_HMAC);
        buf[..REFLECTOR_LEN].copy_from_slice(&out);
        Ok(len)
    }

    /// Opens a sealed Session-Reflector packet.
    pub fn open_reflector(&self, buf: &[u8]) -> Result<ReflectorPacket, Refused> {
        let c = self.open::<REFLECTOR_LEN>(buf)?;
        Ok(ReflectorPacket {
            seq: u32_at(&c, 0),
            timestamp: ts_at(&c, 16),
            error: u16_at(&c, 24),
            ssid: 0,
            receive_timestamp: ts_at(&c, 32),
            sender_seq: u32_at(&c, 48),
            sender_timestamp: ts_at(&c, 64),
            sender_error: Some(u16_at(&c, 72)),
            sender_ttl: Some(c[80]),
        })
    }
}

fn as_blocks(buf: &mut [u8]) -> &mut [aes::Block] {
    let (blocks, rest) = aes::Block::slice_as_chunks_mut(buf);
    debug_assert!(rest.is_empty());
    blocks
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn u16_at(b: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn ts_at(b: &[u8], at: usize) -> Timestamp {
    Timestamp::from_bytes(b[at..at + 8].try_into().unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::twamp::Reflection;
    use std::process::Command;

    const AES: [u8; 16] = [0x42; 16];
    const HMAC: [u8; 32] = [0x17; 32];
    const SID: [u8; 16] = [
        10, 0, 0, 1, 0xe0, 1, 2, 3, 4, 5, 6, 7, 0xa1, 0xb2, 0xc3, 0xd4,
    ];

    fn hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    fn t(secs: u32, frac: u32) -> Timestamp {
        Timestamp { secs, frac }
    }

    /// A sender packet and the reflector's answer to it, sealed by us.
    fn exchange(mode: Mode) -> (Vec<u8>, Vec<u8>) {
        let k = TestKeys::derive(mode, &AES, &HMAC, &SID).unwrap();
        let mut p = vec![0xeeu8; 120];
        k.seal_sender(&mut p, 7, t(0xe000_0001, 0x8000_0000), 0x8001);
        let sent = p.clone();
        let r = Reflection {
            seq: 3,
            error: 0x0102,
            receive_timestamp: t(0xe000_0002, 0x10),
            ttl: 62,
        };
        assert_eq!(
            k.reflect_in_place(&mut p, 120, &r, t(0xe000_0002, 0x20)),
            Ok(120)
        );
        (sent, p)
    }

    #[test]
    fn every_mode_round_trips_and_a_flipped_bit_is_refused() {
        assert!(TestKeys::derive(Mode::Unauthenticated, &AES, &HMAC, &SID).is_none());
        for mode in [Mode::Authenticated, Mode::Encrypted] {
            let k = TestKeys::derive(mode, &AES, &HMAC, &SID).unwrap();
            let (sent, reply) = exchange(mode);
            assert_eq!(
                k.open_sender(&sent),
                Ok((7, t(0xe000_0001, 0x8000_0000), 0x8001))
            );
            let r = k.open_reflector(&reply).unwrap();
            assert_eq!((r.seq, r.sender_seq, r.sender_ttl), (3, 7, Some(62)));
            assert_eq!(r.timestamp, t(0xe000_0002, 0x20));
            assert_eq!(r.receive_timestamp, t(0xe000_0002, 0x10));
            assert_eq!(r.sender_timestamp, t(0xe000_0001, 0x8000_0000));
            // The padding beyond the reply's 112 bytes is the request's.
            assert_eq!(&reply[112..], &[0xee; 8]);
            // Any bit flipped in what the HMAC covers, or in the HMAC: refused.
            for at in [0, 15, 40] {
                let mut bad = reply.clone();
                bad[at] ^= 1;
                let covered = !(16..96).contains(&at) || mode == Mode::Encrypted;
                assert_eq!(k.open_reflector(&bad).is_err(), covered, "{mode:?} {at}");
            }
            let mut bad = sent.clone();
            bad[33] ^= 0x80;
            assert_eq!(k.open_sender(&bad), Err(Refused));
            // Another session's keys do not open it.
            let other = TestKeys::derive(mode, &AES, &HMAC, &[0; 16]).unwrap();
            assert_eq!(other.open_sender(&sent), Err(Refused));
            assert_eq!(other.open_sender(&sent[..47]), Err(Refused));
            let mut short = sent.clone();
            let r = Reflection {
                seq: 0,
                error: 0,
                receive_timestamp: t(0, 0),
                ttl: 0,
            };
            assert_eq!(
                k.reflect_in_place(&mut short[..100], 100, &r, t(0, 0)),
                Err(Refused)
            );
        }
    }

    /// The key derivation and both packets of each keyed mode, computed again by Python's
    /// hmac and the `cryptography` package's AES from the same session keys and SID.
    #[test]
    fn keys_and_packets_match_python_cryptography() {
        let py = r#"
import hmac, sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
aes, hk, sid = bytes([0x42])*16, bytes([0x17])*32, bytes.fromhex(sys.argv[1])
def run(key, mode, data):
    e = Cipher(algorithms.AES(key), mode).encryptor()
    return e.update(data) + e.finalize()
tkey = run(sid, modes.ECB(), aes)
thmac = run(sid, modes.CBC(bytes(16)), hk)
snd = (7).to_bytes(4, 'big') + bytes(12) + bytes.fromhex('e00000018000000080 01'.replace(' ', '')) + bytes(6)
rep = bytearray(96)
rep[0:4] = (3).to_bytes(4, 'big')
rep[16:24] = bytes.fromhex('e000000200000020')
rep[24:26] = bytes.fromhex('0102')
rep[32:40] = bytes.fromhex('e000000200000010')
rep[48:52] = snd[0:4]
rep[64:74] = snd[16:26]
rep[80] = 62
rep = bytes(rep)
for name in ['authenticated', 'encrypted']:
    n_s, n_r = (32, 96) if name == 'encrypted' else (16, 16)
    hs = hmac.new(thmac, snd[:n_s], 'sha1').digest()[:16]
    hr = hmac.new(thmac, rep[:n_r], 'sha1').digest()[:16]
    s = run(tkey, modes.CBC(bytes(16)), snd[:n_s]) + snd[n_s:32] + hs
    r = run(tkey, modes.CBC(bytes(16)), rep[:n_r]) + rep[n_r:96] + hr
    print(s.hex(), r.hex())
"#;
        let out = Command::new("/usr/bin/python3")
            .args(["-c", py, &hex(&SID)])
            .output()
            .expect("this test needs /usr/bin/python3 (with Debian's python3-cryptography)");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        for (mode, line) in [Mode::Authenticated, Mode::Encrypted]
            .into_iter()
            .zip(lines)
        {
            let (sent, reply) = exchange(mode);
            let want = format!(
                "{} {}",
                hex(&sent[..SENDER_LEN]),
                hex(&reply[..REFLECTOR_LEN])
            );
            assert_eq!(line, want, "{mode:?}");
        }
    }
}
