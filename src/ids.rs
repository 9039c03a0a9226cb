//! Random identifiers and secrets: every id and token comes from the operating system's CSPRNG; and the
//! lowercase hex in which digests and MACs are written out.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Fills `N` bytes from the OS CSPRNG. A failing OS RNG leaves nothing safe to do, so it aborts loudly.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if let Err(err) = getrandom::fill(&mut buf) {
        // Continuing without randomness would mint guessable ids and session tokens.
        panic!("the operating system's random number generator failed: {err}");
    }
    buf
}

/// A new object id: 128 random bits as 22 URL-safe characters.
pub fn new_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}

/// A new bearer secret (session cookies, guest sessions): 256 random bits as 43 URL-safe characters.
pub fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// The form in which a bearer secret is stored: SHA-256, URL-safe base64. Secrets carry 256 bits of entropy,
/// so a fast hash is enough — only the database copy must be useless to a thief.
pub fn secret_hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(secret.as_bytes()))
}

/// Lowercase hex of `bytes` (digests, MACs, checksums).
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 0x0f)] as char);
    }
    out
}

/// Picks `len` characters uniformly from `alphabet` (rejection sampling keeps the distribution even).
pub fn random_chars(alphabet: &[u8], len: usize) -> String {
    let limit = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(len);
    while out.len() < len {
        for byte in random_bytes::<32>() {
            if (byte as usize) < limit && out.len() < len {
                out.push(alphabet[byte as usize % alphabet.len()] as char);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_long_unique_and_url_safe() {
        let a = new_id();
        let b = new_id();
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
        assert_eq!(new_secret().len(), 43);
    }

    #[test]
    fn hex_is_lowercase_two_digits_a_byte() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn random_chars_stay_in_alphabet() {
        let s = random_chars(b"abc", 200);
        assert_eq!(s.len(), 200);
        assert!(s.chars().all(|c| "abc".contains(c)));
        for c in ['a', 'b', 'c'] {
            assert!(s.contains(c), "all letters should appear in 200 draws");
        }
    }
}
