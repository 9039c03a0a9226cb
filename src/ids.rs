//! Identifiers and secrets: their random parts come from the operating system's CSPRNG (ordered ids and
//! guest sessions also carry their creation time in front, for the indexes they go into); and the lowercase
//! hex in which digests and MACs are written out.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// Fills `N` bytes from the OS CSPRNG. A failing OS RNG leaves nothing safe to do, so it aborts loudly.
///
/// The bytes are the kernel's, fetched [`POOL_BYTES`] at a time per thread: a guest's join needs three draws
/// (its id, its session's time and secret), and a system call for each was a measurable share of the join
/// path's own CPU. Bytes are wiped from the pool as they are handed out, so the pool holds only bytes no id
/// or secret has used yet. confctl never forks without `exec`, so no two processes share a pool.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut out = [0u8; N];
    if N > POOL_BYTES {
        fill_from_os(&mut out);
        return out;
    }
    POOL.with_borrow_mut(|pool| {
        if pool.used + N > POOL_BYTES {
            fill_from_os(&mut pool.bytes);
            pool.used = 0;
        }
        let drawn = &mut pool.bytes[pool.used..pool.used + N];
        out.copy_from_slice(drawn);
        drawn.fill(0);
        pool.used += N;
    });
    out
}

/// How many random bytes a thread fetches from the kernel at once.
const POOL_BYTES: usize = 512;

struct Pool {
    bytes: [u8; POOL_BYTES],
    /// How many bytes from the front have been handed out (and wiped).
    used: usize,
}

thread_local! {
    static POOL: std::cell::RefCell<Pool> =
        const { std::cell::RefCell::new(Pool { bytes: [0; POOL_BYTES], used: POOL_BYTES }) };
}

fn fill_from_os(buf: &mut [u8]) {
    if let Err(err) = getrandom::fill(buf) {
        // Continuing without randomness would mint guessable ids and session tokens.
        panic!("the operating system's random number generator failed: {err}");
    }
}

/// A new object id: 128 random bits as 22 URL-safe characters.
pub fn new_id() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<16>())
}

/// A new object id that sorts by creation time: 48 bits of milliseconds since 1970, then 80 random bits, as
/// 22 characters of an alphabet in ASCII order (so the text sorts as the bytes do). For rows written by the
/// thousand a second (guests joining): each new key lands at the end of its index instead of on a random page
/// of it, so a batch of joins dirties a page or two of the index rather than a page per guest. Not a secret;
/// 80 random bits keep ids made in the same millisecond apart.
pub fn new_ordered_id() -> String {
    let millis = u64::try_from(crate::time::now_ms()).unwrap_or(0);
    let mut bytes = [0u8; 16];
    bytes[..6].copy_from_slice(&millis.to_be_bytes()[2..]);
    bytes[6..].copy_from_slice(&random_bytes::<10>());
    ORDERED.encode(bytes)
}

/// Base64 with its 64 characters in ASCII order.
const ORDERED: base64::engine::GeneralPurpose = base64::engine::GeneralPurpose::new(
    &match base64::alphabet::Alphabet::new("-0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz") {
        Ok(alphabet) => alphabet,
        Err(_) => panic!("the ordered alphabet has 64 distinct printable characters"),
    },
    base64::engine::general_purpose::NO_PAD,
);

/// A new bearer secret (session cookies, guest sessions): 256 random bits as 43 URL-safe characters.
pub fn new_secret() -> String {
    URL_SAFE_NO_PAD.encode(random_bytes::<32>())
}

/// A new guest session: 8 characters of creation time (the milliseconds of [`new_ordered_id`]), then a
/// secret of [`new_secret`]'s 256 random bits. Stored as [`session_hash`], which keeps the time in front, so
/// the sessions of guests joining at the same moment land next to each other in the index that finds them.
pub fn new_session() -> String {
    let mut session = new_ordered_id();
    session.truncate(SESSION_TIME);
    session.push_str(&new_secret());
    session
}

/// How many leading characters of a session are its creation time.
const SESSION_TIME: usize = 8;

/// The stored form of a guest session: its time characters in front of its [`secret_hash`] (the hash covers
/// the whole session, so the visible time gives nothing away). A session of the earlier form (43 characters,
/// no time) is stored as the bare hash, as it was.
pub fn session_hash(session: &str) -> String {
    match session.get(..SESSION_TIME) {
        Some(time) if session.len() == SESSION_TIME + 43 && session.is_ascii() => {
            format!("{time}{}", secret_hash(session))
        }
        _ => secret_hash(session),
    }
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
    fn draws_from_the_pool_are_fresh_across_refills() {
        // Several pools' worth of draws of the sizes ids and secrets use: none repeats, none is the wiped zeros.
        let mut seen = std::collections::HashSet::new();
        for _ in 0..(4 * POOL_BYTES / 10) {
            let (a, b, c) = (random_bytes::<10>(), random_bytes::<16>(), random_bytes::<32>());
            assert!(a != [0; 10] && b != [0; 16] && c != [0; 32]);
            assert!(seen.insert(a.to_vec()) && seen.insert(b.to_vec()) && seen.insert(c.to_vec()));
        }
        assert_ne!(random_bytes::<{ 2 * POOL_BYTES }>(), [0; 2 * POOL_BYTES], "a draw larger than the pool");
    }

    #[test]
    fn ordered_ids_sort_by_creation_time() {
        let mut ids = Vec::new();
        for _ in 0..5 {
            ids.push(new_ordered_id());
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        assert!(
            ids.iter().all(|id| id.len() == 22 && id.chars().all(|c| c.is_ascii_alphanumeric() || "-_".contains(c)))
        );
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(sorted, ids, "ids made 2 ms apart sort in the order they were made");
        assert_ne!(new_ordered_id(), new_ordered_id());
    }

    #[test]
    fn sessions_are_stored_with_their_time_in_front() {
        let a = new_session();
        assert_eq!(a.len(), 51);
        let stored = session_hash(&a);
        assert_eq!(stored, format!("{}{}", &a[..8], secret_hash(&a)));
        assert_ne!(session_hash(&new_session()), stored);
        // A session of the earlier form keeps its earlier stored form; so does anything else a client sends.
        let old = new_secret();
        assert_eq!(session_hash(&old), secret_hash(&old));
        assert_eq!(session_hash("short"), secret_hash("short"));
        let odd = format!("{}é", "x".repeat(49));
        assert_eq!(session_hash(&odd), secret_hash(&odd));
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
