//! The keyed modes of TWAMP-Control (RFC 4656 3.1, 3.2, 3.4; RFC 5357 3.1): the key derived
//! from a shared secret, the Token that carries the session keys, and the two ciphered
//! streams of a control connection. Every primitive is a RustCrypto crate's; this module only
//! arranges them as the RFC says.
//!
//! - The secret's key: PBKDF2 with HMAC-SHA1, the greeting's salt and iteration count, 16
//!   bytes (an AES-128 key).
//! - The Token (64 bytes): challenge (16), AES session key (16), HMAC session key (32),
//!   AES-CBC encrypted under the secret's key with an all-zero IV.
//! - After Server-Start's IV, each direction is one AES-CBC stream under the AES session key:
//!   the client's starts from its Client-IV, the server's from its Server-IV, and the chain
//!   runs on from one message to the next. The authenticated and encrypted modes cipher the
//!   control connection alike; they differ only on the test packets.
//! - Every HMAC field is HMAC-SHA1 under the HMAC session key, truncated to 16 bytes, over
//!   the clear text of everything this side sent since its previous HMAC field (so Server-Start's
//!   last block counts towards the server's first Accept-Session). The HMAC field itself is
//!   then ciphered with the rest.
#![forbid(unsafe_code)]

use crate::wire::twamp_control::{BLOCK, HMAC_LEN, TOKEN_LEN};
use aes::cipher::{BlockModeDecrypt, BlockModeEncrypt, IvState, KeyIvInit};
use aes::Aes128;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use std::io;

type Enc = cbc::Encryptor<Aes128>;
type Dec = cbc::Decryptor<Aes128>;
type HmacSha1 = Hmac<Sha1>;

/// The iteration count a server offers: RFC 4656 3.1 asks for at least 1024.
pub const DEFAULT_COUNT: u32 = 1024;
/// The highest count a client accepts from a greeting: a server could otherwise make every
/// client spend minutes of CPU per connection (RFC 7717 suggests a limit).
pub const MAX_COUNT: u32 = 1 << 20;

/// `N` bytes from the kernel's random generator.
pub use crate::random::bytes as random;

/// The AES key a shared secret gives under a greeting's salt and count.
pub fn secret_key(secret: &[u8], salt: &[u8; 16], count: u32) -> [u8; 16] {
    pbkdf2::pbkdf2_hmac_array::<Sha1, 16>(secret, salt, count)
}

/// What the Token carries.
#[derive(Clone, PartialEq, Eq)]
pub struct Token {
    pub challenge: [u8; 16],
    pub aes_key: [u8; 16],
    pub hmac_key: [u8; 32],
}

impl std::fmt::Debug for Token {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Token { .. }")
    }
}

impl Token {
    /// A token answering `challenge`, with fresh session keys.
    pub fn fresh(challenge: [u8; 16]) -> io::Result<Token> {
        Ok(Token {
            challenge,
            aes_key: random()?,
            hmac_key: random()?,
        })
    }

    pub fn encrypt(&self, key: &[u8; 16]) -> [u8; TOKEN_LEN] {
        let mut b = [0u8; TOKEN_LEN];
        b[..16].copy_from_slice(&self.challenge);
        b[16..32].copy_from_slice(&self.aes_key);
        b[32..].copy_from_slice(&self.hmac_key);
        let mut enc = Enc::new(key.into(), &[0u8; 16].into());
        cbc_blocks(&mut b, |blk| enc.encrypt_block(blk));
        b
    }

    pub fn decrypt(key: &[u8; 16], token: &[u8; TOKEN_LEN]) -> Token {
        let mut b = *token;
        let mut dec = Dec::new(key.into(), &[0u8; 16].into());
        cbc_blocks(&mut b, |blk| dec.decrypt_block(blk));
        let mut t = Token {
            challenge: [0; 16],
            aes_key: [0; 16],
            hmac_key: [0; 32],
        };
        t.challenge.copy_from_slice(&b[..16]);
        t.aes_key.copy_from_slice(&b[16..32]);
        t.hmac_key.copy_from_slice(&b[32..]);
        t
    }
}

/// Runs `f` over each 16-byte block of `buf` (whose length is a multiple of 16).
fn cbc_blocks(buf: &mut [u8], mut f: impl FnMut(&mut aes::Block)) {
    for chunk in buf.chunks_exact_mut(BLOCK) {
        let blk: &mut aes::Block = chunk.try_into().expect("a 16-byte chunk is one block");
        f(blk);
    }
}

/// One side's outgoing stream: encrypts and authenticates what it sends.
pub struct Sealer {
    enc: Enc,
    mac: HmacSha1,
    hmac_key: [u8; 32],
}

impl Sealer {
    pub fn new(token: &Token, iv: &[u8; 16]) -> Sealer {
        Sealer {
            enc: Enc::new((&token.aes_key).into(), iv.into()),
            mac: new_mac(&token.hmac_key),
            hmac_key: token.hmac_key,
        }
    }

    /// Seals a message that ends in an HMAC field: authenticates everything before it (and
    /// whatever [`Sealer::seal_unauthenticated`] added since the last HMAC), writes the HMAC,
    /// encrypts the whole message in place.
    pub fn seal(&mut self, msg: &mut [u8]) {
        debug_assert!(msg.len() % BLOCK == 0 && msg.len() > HMAC_LEN);
        let body = msg.len() - HMAC_LEN;
        self.mac.update(&msg[..body]);
        let tag = std::mem::replace(&mut self.mac, new_mac(&self.hmac_key)).finalize();
        msg[body..].copy_from_slice(&tag.into_bytes()[..HMAC_LEN]);
        cbc_blocks(msg, |blk| self.enc.encrypt_block(blk));
    }

    /// Encrypts blocks that carry no HMAC of their own (Server-Start's last block): the next
    /// HMAC this side sends covers them.
    pub fn seal_unauthenticated(&mut self, blocks: &mut [u8]) {
        self.mac.update(blocks);
        cbc_blocks(blocks, |blk| self.enc.encrypt_block(blk));
    }
}

/// The HMAC of a message did not verify: the connection is not to be trusted any further.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadHmac;

/// One side's incoming stream: decrypts and verifies what it receives.
pub struct Opener {
    dec: Dec,
    mac: HmacSha1,
    aes_key: [u8; 16],
    hmac_key: [u8; 32],
}

impl Opener {
    pub fn new(token: &Token, iv: &[u8; 16]) -> Opener {
        Opener {
            dec: Dec::new((&token.aes_key).into(), iv.into()),
            mac: new_mac(&token.hmac_key),
            aes_key: token.aes_key,
            hmac_key: token.hmac_key,
        }
    }

    /// The clear text of the next block, without consuming it: a server reads a command's
    /// first block to learn how long the command is.
    pub fn peek(&self, block: &[u8; BLOCK]) -> [u8; BLOCK] {
        let mut b = *block;
        // CBC: a block's clear text needs only the key and the previous cipher block.
        let mut dec = Dec::new((&self.aes_key).into(), &self.dec.iv_state());
        cbc_blocks(&mut b, |blk| dec.decrypt_block(blk));
        b
    }

    /// Decrypts a message that ends in an HMAC field in place and verifies the HMAC (in
    /// constant time). The HMAC field is left as received, decrypted.
    pub fn open(&mut self, msg: &mut [u8]) -> Result<(), BadHmac> {
        if msg.len() % BLOCK != 0 || msg.len() <= HMAC_LEN {
            return Err(BadHmac);
        }
        cbc_blocks(msg, |blk| self.dec.decrypt_block(blk));
        let body = msg.len() - HMAC_LEN;
        self.mac.update(&msg[..body]);
        let mac = std::mem::replace(&mut self.mac, new_mac(&self.hmac_key));
        mac.verify_truncated_left(&msg[body..]).map_err(|_| BadHmac)
    }

    /// Decrypts blocks without an HMAC of their own (Server-Start's last block); the next
    /// HMAC received covers them.
    pub fn open_unauthenticated(&mut self, blocks: &mut [u8]) {
        cbc_blocks(blocks, |blk| self.dec.decrypt_block(blk));
        self.mac.update(blocks);
    }
}

fn new_mac(key: &[u8; 32]) -> HmacSha1 {
    <HmacSha1 as KeyInit>::new_from_slice(key).expect("HMAC takes a key of any length")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::Command;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    fn to_hex(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn secret_key_matches_rfc6070_pbkdf2_hmac_sha1_vectors() {
        // RFC 6070 test vectors 1 and 3 (P = "password", S = "salt"), truncated to the 16
        // bytes TWAMP uses; the salt here is 16 bytes, so check the PBKDF2 crate call the
        // same way the module makes it.
        let dk = pbkdf2::pbkdf2_hmac_array::<Sha1, 20>(b"password", b"salt", 1);
        assert_eq!(to_hex(&dk), "0c60c80f961f0e71f3a9b524af6012062fe037a6");
        let dk = pbkdf2::pbkdf2_hmac_array::<Sha1, 20>(b"password", b"salt", 4096);
        assert_eq!(to_hex(&dk), "4b007901b765489abead49d926f721d065a429c1");
    }

    #[test]
    fn cbc_matches_nist_sp800_38a_f2_1() {
        // NIST SP 800-38A F.2.1, CBC-AES128.Encrypt, the four blocks run as one chain split
        // over two messages, as a control stream does.
        let key: [u8; 16] = hex("2b7e151628aed2a6abf7158809cf4f3c").try_into().unwrap();
        let iv: [u8; 16] = hex("000102030405060708090a0b0c0d0e0f").try_into().unwrap();
        let plain = hex(concat!(
            "6bc1bee22e409f96e93d7e117393172a",
            "ae2d8a571e03ac9c9eb76fac45af8e51",
            "30c81c46a35ce411e5fbc1191a0a52ef",
            "f69f2445df4f9b17ad2b417be66c3710"
        ));
        let token = Token {
            challenge: [0; 16],
            aes_key: key,
            hmac_key: [0; 32],
        };
        let mut s = Sealer::new(&token, &iv);
        let mut a = plain[..16].to_vec();
        s.seal_unauthenticated(&mut a);
        let mut b = plain[16..].to_vec();
        s.seal_unauthenticated(&mut b);
        a.extend_from_slice(&b);
        assert_eq!(
            to_hex(&a),
            concat!(
                "7649abac8119b246cee98e9b12e9197d",
                "5086cb9b507219ee95db113a917678b2",
                "73bed6b8e3c1743b7116e69e22229516",
                "3ff1caa1681fac09120eca307586e1a7"
            )
        );
        let mut o = Opener::new(&token, &iv);
        assert_eq!(o.peek(a[..16].try_into().unwrap()), plain[..16]);
        o.open_unauthenticated(&mut a);
        assert_eq!(a, plain);
    }

    #[test]
    fn hmac_matches_rfc2202_case_2_truncated() {
        // RFC 2202 test case 2: key "Jefe", "what do ya want for nothing?".
        let mut m = <HmacSha1 as KeyInit>::new_from_slice(b"Jefe").unwrap();
        m.update(b"what do ya want for nothing?");
        assert_eq!(
            to_hex(&m.finalize().into_bytes()),
            "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79"
        );
    }

    /// The whole keyed set-up and two messages each way, computed again by Python's
    /// hashlib/hmac and the `cryptography` package's AES (an independent implementation),
    /// from the same secret, salt, count, keys and IVs.
    #[test]
    fn token_and_stream_match_python_cryptography() {
        let have = Command::new("/usr/bin/python3")
            .args(["-c", "import cryptography"])
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(
            have,
            "this test needs /usr/bin/python3 with the cryptography package (Debian's python3-cryptography)"
        );
        let secret = b"shared secret, 28 bytes long";
        let salt = [0x5a; 16];
        let count = 1024;
        let token = Token {
            challenge: [0xc1; 16],
            aes_key: [0x42; 16],
            hmac_key: [0x17; 32],
        };
        let client_iv = [0x24; 16];
        let key = secret_key(secret, &salt, count);
        let sealed_token = token.encrypt(&key);
        let mut s = Sealer::new(&token, &client_iv);
        let mut tail = [0x01u8; 16];
        s.seal_unauthenticated(&mut tail);
        let mut first = [0u8; 48];
        first[0] = 5;
        first[1..32].fill(0x33);
        s.seal(&mut first);
        let mut second = [0u8; 32];
        second[0] = 2;
        s.seal(&mut second);

        let py = r#"
import hashlib, hmac, sys
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
secret, salt, count = sys.argv[1].encode(), bytes([0x5a])*16, 1024
key = hashlib.pbkdf2_hmac('sha1', secret, salt, count, 16)
tok = bytes([0xc1])*16 + bytes([0x42])*16 + bytes([0x17])*32
e = Cipher(algorithms.AES(key), modes.CBC(bytes(16))).encryptor()
print((e.update(tok) + e.finalize()).hex())
enc = Cipher(algorithms.AES(bytes([0x42])*16), modes.CBC(bytes([0x24])*16)).encryptor()
tail = bytes([1])*16
m1 = bytes([5]) + bytes([0x33])*31
m2 = bytes([2]) + bytes(15)
h1 = hmac.new(bytes([0x17])*32, tail + m1, 'sha1').digest()[:16]
h2 = hmac.new(bytes([0x17])*32, m2, 'sha1').digest()[:16]
print(enc.update(tail).hex())
print(enc.update(m1 + h1).hex())
print(enc.update(m2 + h2).hex())
"#;
        let out = Command::new("/usr/bin/python3")
            .args(["-c", py, std::str::from_utf8(secret).unwrap()])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = String::from_utf8(out.stdout).unwrap();
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], to_hex(&sealed_token), "token");
        assert_eq!(
            lines[1],
            to_hex(&tail),
            "Server-Start's unauthenticated block"
        );
        assert_eq!(lines[2], to_hex(&first), "first message and its HMAC");
        assert_eq!(
            lines[3],
            to_hex(&second),
            "second message: HMAC since the first only"
        );

        // And the receiving side opens what was sealed.
        assert_eq!(Token::decrypt(&key, &sealed_token), token);
        let mut o = Opener::new(&token, &client_iv);
        o.open_unauthenticated(&mut tail);
        assert_eq!(tail, [1; 16]);
        assert_eq!(o.peek(first[..16].try_into().unwrap())[0], 5);
        assert_eq!(o.open(&mut first), Ok(()));
        assert_eq!(first[0], 5);
        assert_eq!(o.open(&mut second), Ok(()));
    }

    #[test]
    fn a_flipped_bit_or_a_wrong_key_fails_the_hmac() {
        let token = Token::fresh([7; 16]).unwrap();
        let iv = random::<16>().unwrap();
        let mut msg = [0u8; 32];
        msg[0] = 2;
        let mut s = Sealer::new(&token, &iv);
        s.seal(&mut msg);
        let mut flipped = msg;
        flipped[3] ^= 0x10;
        assert_eq!(Opener::new(&token, &iv).open(&mut flipped), Err(BadHmac));
        let other = Token::fresh([7; 16]).unwrap();
        let mut copy = msg;
        assert_eq!(Opener::new(&other, &iv).open(&mut copy), Err(BadHmac));
        let mut ok = msg;
        assert_eq!(Opener::new(&token, &iv).open(&mut ok), Ok(()));
        assert_eq!(Opener::new(&token, &iv).open(&mut [0u8; 15]), Err(BadHmac));
        // A wrong secret decrypts the token to a wrong challenge, which the server checks.
        let k1 = secret_key(b"right", &[1; 16], 1024);
        let k2 = secret_key(b"wrong", &[1; 16], 1024);
        assert_ne!(Token::decrypt(&k2, &token.encrypt(&k1)).challenge, [7; 16]);
    }
}
