//! The one normaliser for names people show to each other: guests' display names and account names.
//!
//! A name is put in Unicode NFC, its whitespace runs (and invisible "blank" letters such as the Hangul filler)
//! become one space, invisible format characters (zero-width spaces, soft hyphens, the BOM, tag
//! characters: general category Cf) are removed, and names with control characters or direction-changing
//! characters (bidi embeddings, overrides, isolates and marks) are refused outright, since no real name needs
//! them and they reorder what is shown around them. Finally a name may not end in a role label that the pages
//! show beside names ("Ann (Host)", "Борис ведущий", "Eve (you)"): that is how one guest impersonates the host.
//! The labels are read from the pages' own catalogues (`web/i18n/*.txt`), so a new translation is covered too.

use std::borrow::Cow;
use std::sync::OnceLock;

use unicode_normalization::{IsNormalized, UnicodeNormalization, is_nfc_quick, is_nfkc_quick};
use unicode_properties::{GeneralCategory, UnicodeGeneralCategory};

use crate::error::{Error, Result};

/// What a page puts next to a name, and whether it does so in brackets only ("(you)") or as a bare tag.
const LABEL_KEYS: &[(&str, bool)] = &[
    ("role.HOST", false),
    ("role.ADMIN", false),
    ("chat.role.host", false),
    ("chat.role.admin", false),
    ("chat.role.assistant", false),
    ("people.you", true),
];

/// Letters that render as nothing (Hangul fillers, the Braille blank, the half-width filler): treated as
/// whitespace, so they cannot make a name look empty or pad it.
fn is_blank_letter(c: char) -> bool {
    matches!(c, '\u{115F}' | '\u{1160}' | '\u{3164}' | '\u{FFA0}' | '\u{2800}')
}

/// The zero-width joiner and non-joiner are kept: emoji sequences (👩‍🏫) and Persian and Indic spelling
/// need them. Label comparison ignores them (see `skeleton`).
fn is_joiner(c: char) -> bool {
    matches!(c, '\u{200C}' | '\u{200D}')
}

/// Bidirectional formatting characters (LRE, RLE, PDF, LRO, RLO, LRI, RLI, FSI, PDI, LRM, RLM, ALM).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Whether a name may end in a role label: guests' names may not (that is how one poses as the host); an
/// account's name is the person's own, shown with their real role, so "Admin" stays a valid account name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Labels {
    Refused,
    Allowed,
}

/// Normalises `input` as a name of at most `max_chars` characters, or refuses it with `code` and a message
/// that names the problem. Surrounding whitespace is trimmed first; a line break or other control character
/// inside is refused, not folded into a space.
pub fn normalize(input: &str, max_chars: usize, code: &'static str, labels: Labels) -> Result<String> {
    let mut out = String::with_capacity(input.len());
    let mut pending_space = false;
    // Whether anything but a joiner (the only invisible characters kept) went in.
    let mut visible = false;
    for c in nfc(input.trim()).chars() {
        // A tab is only a wide space; a line break or any other control character has no place in a name.
        if c.is_control() && c != '\t' {
            return Err(Error::invalid(code, "the name may not contain control characters"));
        }
        if c.is_whitespace() || is_blank_letter(c) {
            pending_space = !out.is_empty();
            continue;
        }
        if is_bidi_control(c) {
            return Err(Error::invalid(code, "the name may not contain characters that change the text direction"));
        }
        if c.general_category() == GeneralCategory::Format && !is_joiner(c) {
            // Invisible: dropped, so "Ann\u{200B}" and "Ann" are one name.
            continue;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
            visible = true;
        }
        visible |= !is_joiner(c);
        out.push(c);
    }
    let n = out.chars().count();
    if !visible || n > max_chars {
        return Err(Error::invalid(code, format!("the name must have 1 to {max_chars} visible characters")));
    }
    if let Some(label) = imitated_label(&out).filter(|_| labels == Labels::Refused) {
        return Err(Error::invalid(
            code,
            format!("the name may not end in “{label}”: the pages show that beside the host's or your own name"),
        ));
    }
    Ok(out)
}

/// A role label as compared: its words' skeletons, what the pages show, and whether only a bracketed use counts.
struct Label {
    words: Vec<String>,
    shown: String,
    bracketed_only: bool,
}

fn labels() -> &'static [Label] {
    static LABELS: OnceLock<Vec<Label>> = OnceLock::new();
    LABELS.get_or_init(|| {
        let mut labels: Vec<Label> = Vec::new();
        for lang in crate::i18n::Lang::ALL {
            for &(key, bracketed_only) in LABEL_KEYS {
                let Some(shown) = lang.catalogue().lookup(key) else { continue };
                let words = words(&skeleton(shown));
                if !words.is_empty() && !labels.iter().any(|l| l.words == words) {
                    labels.push(Label { words, shown: shown.to_owned(), bracketed_only });
                }
            }
        }
        labels
    })
}

/// The label `name` ends in, if any: compared word by word after compatibility folding, case folding and
/// mapping look-alike Cyrillic and Greek letters to Latin, ignoring brackets and punctuation at the end.
fn imitated_label(name: &str) -> Option<&'static str> {
    let folded = skeleton(name);
    let body = folded.trim_end_matches(|c: char| !c.is_alphanumeric());
    let bracketed = body.len() < folded.len();
    let name_words = words(body);
    labels()
        .iter()
        .filter(|l| bracketed || !l.bracketed_only)
        .find(|l| name_words.ends_with(&l.words))
        .map(|l| l.shown.as_str())
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_owned).collect()
}

/// NFKC (full-width and styled letters become plain ones), lower case, then look-alikes mapped to Latin. Both
/// sides of a comparison go through this, so mapping a letter whose capital only looks Latin (в, н, т) is safe.
fn skeleton(text: &str) -> String {
    nfkc(text)
        .chars()
        .filter(|c| c.general_category() != GeneralCategory::Format)
        .flat_map(char::to_lowercase)
        .map(latin_look_alike)
        .collect()
}

/// `text` in NFC. Names typed on a keyboard almost always are already, and Unicode's quick check says so for
/// a fraction of what composing them again costs (a join's display name goes through here and [`nfkc`]);
/// only a name it cannot vouch for is normalised in full.
fn nfc(text: &str) -> Cow<'_, str> {
    match is_nfc_quick(text.chars()) {
        IsNormalized::Yes => Cow::Borrowed(text),
        IsNormalized::No | IsNormalized::Maybe => Cow::Owned(text.nfc().collect()),
    }
}

/// `text` in NFKC, by the same quick check as [`nfc`].
fn nfkc(text: &str) -> Cow<'_, str> {
    match is_nfkc_quick(text.chars()) {
        IsNormalized::Yes => Cow::Borrowed(text),
        IsNormalized::No | IsNormalized::Maybe => Cow::Owned(text.nfkc().collect()),
    }
}

fn latin_look_alike(c: char) -> char {
    match c {
        'а' | 'α' => 'a',
        'в' | 'β' => 'b',
        'е' | 'ε' => 'e',
        'н' | 'η' | 'һ' => 'h',
        'і' | 'ι' | 'ı' => 'i',
        'ј' => 'j',
        'к' | 'κ' => 'k',
        'м' | 'μ' => 'm',
        'ν' => 'n',
        'о' | 'ο' => 'o',
        'р' | 'ρ' => 'p',
        'с' | 'ϲ' => 'c',
        'ѕ' => 's',
        'т' | 'τ' => 't',
        'у' | 'υ' => 'y',
        'х' | 'χ' => 'x',
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(name: &str) -> String {
        normalize(name, 64, "invalid_display_name", Labels::Refused).unwrap()
    }

    fn refused(name: &str) -> String {
        match normalize(name, 64, "invalid_display_name", Labels::Refused) {
            Err(Error::Invalid { code, message }) => {
                assert_eq!(code, "invalid_display_name");
                message
            }
            other => panic!("{name:?} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn names_are_nfc_with_single_spaces_and_no_invisible_characters() {
        assert_eq!(ok("  Ann \u{2003}\u{3000} Lee  "), "Ann Lee");
        assert_eq!(ok("Ann\u{200B}\u{FEFF}\u{00AD}\u{2060}"), "Ann");
        assert_eq!(ok("Ame\u{0301}lie"), "Amélie", "NFC");
        assert_eq!(ok("Ann\u{3164}\u{3164}Lee"), "Ann Lee", "Hangul fillers are blanks");
        assert_eq!(ok("Борис"), "Борис");
        assert!(refused("\u{200B}\u{3164}").contains("1 to 64"));
        assert!(refused("\u{200D}\u{200C}").contains("visible"), "joiners alone are not a name");
        assert_eq!(ok("Елена 👩\u{200D}🏫"), "Елена 👩\u{200D}🏫", "emoji sequences keep their joiner");
        assert!(refused(&"a".repeat(65)).contains("1 to 64"));
    }

    #[test]
    fn the_quick_checks_give_what_full_normalisation_gives() {
        for text in [
            "Ann Lee",
            "Борис Ёлкин",
            "Ame\u{0301}lie",
            "Ame\u{0301}\u{0323}lie",
            "한국어",
            "\u{1100}\u{1161}\u{11A8}",
            "Ｈｏｓｔ ﬁne ½",
            "\u{212B} \u{2126} \u{212A}",
            "Ελένη",
            "👩\u{200D}🏫",
        ] {
            assert_eq!(nfc(text), text.nfc().collect::<String>(), "{text:?}");
            assert_eq!(nfkc(text), text.nfkc().collect::<String>(), "{text:?}");
        }
        assert!(matches!(nfc("Борис"), Cow::Borrowed(_)), "an NFC name is not copied");
    }

    #[test]
    fn control_and_direction_characters_are_refused() {
        assert!(refused("Ann\u{0007}").contains("control"));
        assert!(refused("Ann\u{0085}Lee").contains("control"), "a next-line character is a line break");
        assert!(refused("new\nline").contains("control"));
        assert_eq!(ok("Ann\n"), "Ann", "surrounding whitespace is trimmed first");
        for c in ['\u{202E}', '\u{202A}', '\u{2066}', '\u{2069}', '\u{200F}', '\u{061C}'] {
            assert!(refused(&format!("Ann{c}Lee")).contains("direction"), "{c:?}");
        }
    }

    #[test]
    fn role_labels_at_the_end_are_refused() {
        for name in [
            "Host A\u{200b} (Host)\u{202e}",
            "Host",
            "Ann (Host)",
            "Ann [HOST]",
            "Ann - host.",
            "Ann (Admin)",
            "Ann (Administrator)",
            "Ann (Assistant)",
            "Ann AI assistant",
            "Борис (ведущий)",
            "Борис Ведущий",
            "Борис вЕДУЩИЙ",
            "Борис (Администратор)",
            "Борис (админ)",
            "Борис (ассистент)",
            "Eve (you)",
            "Eve (вы)",
            "Ann (Ноѕt)",
            "Ann (Ｈｏｓｔ)",
            "Ann (Ho\u{200D}st)",
        ] {
            let _ = refused(name);
        }
        for name in ["Host A", "Ghost", "Ann Hostess", "Ann You", "Вы Ли", "Ann (guest)", "Prof. Ada"] {
            assert_eq!(ok(name), name);
        }
    }

    #[test]
    fn account_names_may_carry_a_label() {
        assert_eq!(normalize("Admin", 100, "invalid_name", Labels::Allowed).unwrap(), "Admin");
        assert!(normalize("Ada\u{202e}", 100, "invalid_name", Labels::Allowed).is_err());
    }

    #[test]
    fn the_labels_come_from_both_catalogues() {
        let shown: Vec<&str> = labels().iter().map(|l| l.shown.as_str()).collect();
        for label in ["Host", "Administrator", "admin", "assistant", "(you)", "Ведущий", "ассистент", "(вы)"]
        {
            assert!(shown.iter().any(|s| s.eq_ignore_ascii_case(label) || *s == label), "{label} in {shown:?}");
        }
    }
}
