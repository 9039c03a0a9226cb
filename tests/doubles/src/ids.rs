//! Owns the LiveKit-shaped identifiers (`RM_…`, `PA_…`, `TR_…`, `EV_…`) and clock readings the double hands out.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use sha2::{Digest, Sha256};

/// The alphabet and length of LiveKit's `guid.New`, so ids look like the real ones in logs and
/// anything that pattern-matches them keeps working.
const ALPHABET: &[u8] = b"23456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";
const ID_LEN: usize = 12;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh id with LiveKit's prefix convention. Uniqueness comes from a process-wide counter;
/// the hash only spreads it over the alphabet so ids are not visibly sequential.
pub(crate) fn guid(prefix: &str) -> String {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let seed = format!("{n}:{}:{}", now_unix_nanos(), std::process::id());
    let digest = Sha256::digest(seed.as_bytes());
    let mut id = String::with_capacity(prefix.len() + ID_LEN);
    id.push_str(prefix);
    for byte in digest.iter().take(ID_LEN) {
        id.push(char::from(ALPHABET[usize::from(*byte) % ALPHABET.len()]));
    }
    id
}

/// A random-looking secret for fields such as `Room.turn_password` that the real server fills.
pub(crate) fn secret() -> String {
    format!("{}{}", guid(""), guid(""))
}

fn now_unix_nanos() -> u128 {
    // A clock before 1970 only makes ids less spread, never wrong, so it need not be an error.
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or_default()
}

pub(crate) fn now_unix_ms() -> i64 {
    i64::try_from(now_unix_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn now_unix_secs() -> i64 {
    now_unix_ms() / 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_have_prefix_and_length_and_are_unique() {
        let a = guid("RM_");
        let b = guid("RM_");
        assert!(a.starts_with("RM_"));
        assert_eq!(a.len(), 3 + ID_LEN);
        assert_ne!(a, b);
    }
}
