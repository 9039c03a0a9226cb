//! Invite codes: short, readable aloud, typed on a phone — `kfm-xbqt-rwp`.

use crate::ids;

/// Lowercase letters without the look-alikes i, l and o.
const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz";
const GROUPS: [usize; 3] = [3, 4, 3];

/// A fresh random code: 10 letters from 23 (~45 bits).
pub fn new_invite_code() -> String {
    let letters = ids::random_chars(ALPHABET, GROUPS.iter().sum());
    format_groups(&letters)
}

fn format_groups(letters: &str) -> String {
    let (a, rest) = letters.split_at(GROUPS[0]);
    let (b, c) = rest.split_at(GROUPS[1]);
    format!("{a}-{b}-{c}")
}

/// Accepts what people type — any case, with or without dashes or spaces — and returns the canonical code,
/// or `None` when it cannot be one.
pub fn normalize_invite_code(input: &str) -> Option<String> {
    let letters: String =
        input.chars().filter(|c| !matches!(c, '-' | ' ' | '\t')).map(|c| c.to_ascii_lowercase()).collect();
    if letters.len() != GROUPS.iter().sum::<usize>() || !letters.bytes().all(|b| ALPHABET.contains(&b)) {
        return None;
    }
    Some(format_groups(&letters))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_look_right_and_normalise() {
        let code = new_invite_code();
        assert_eq!(code.len(), 12);
        assert_eq!(normalize_invite_code(&code).as_deref(), Some(code.as_str()));
        assert_eq!(normalize_invite_code("KFM-XBQT-RWP").as_deref(), Some("kfm-xbqt-rwp"));
        assert_eq!(normalize_invite_code("kfm xbqt rwp").as_deref(), Some("kfm-xbqt-rwp"));
        assert_eq!(normalize_invite_code("kfmxbqtrwp").as_deref(), Some("kfm-xbqt-rwp"));
        assert_eq!(normalize_invite_code("kfm-xbqt-rwi"), None, "look-alike letters are never in a code");
        assert_eq!(normalize_invite_code("kfm-xbqt"), None);
        assert_eq!(normalize_invite_code("'; drop table--"), None);
    }
}
