//! confctl's languages: the English and Russian catalogues (`web/i18n/*.txt`, embedded) that the pages and
//! the exported documents are written from, and which one a page request gets (`?lang=`, then the language
//! cookie, then `Accept-Language`).

use std::collections::HashMap;
use std::sync::OnceLock;

/// A language the pages are translated into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Ru,
}

/// The cookie that remembers an explicit choice (made with `?lang=`).
pub const LANG_COOKIE: &str = "confctl_lang";

const EN_SOURCE: &str = include_str!("../web/i18n/en.txt");
const RU_SOURCE: &str = include_str!("../web/i18n/ru.txt");

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::En, Lang::Ru];

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Ru => "ru",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        let primary = text.trim().split(['-', '_']).next().unwrap_or_default();
        match primary.to_ascii_lowercase().as_str() {
            "en" => Some(Lang::En),
            "ru" => Some(Lang::Ru),
            _ => None,
        }
    }

    /// The language's own name, for the switcher.
    pub fn native_name(self) -> &'static str {
        match self {
            Lang::En => "English",
            Lang::Ru => "Русский",
        }
    }

    pub fn catalogue(self) -> &'static Catalogue {
        static EN: OnceLock<Catalogue> = OnceLock::new();
        static RU: OnceLock<Catalogue> = OnceLock::new();
        match self {
            Lang::En => EN.get_or_init(|| Catalogue::parse(EN_SOURCE)),
            Lang::Ru => RU.get_or_init(|| Catalogue::parse(RU_SOURCE)),
        }
    }
}

/// Picks the language: an explicit `?lang=`, the remembered choice, the browser's preference, English.
pub fn negotiate(query: Option<&str>, cookie: Option<&str>, accept_language: Option<&str>) -> Lang {
    if let Some(lang) = query.and_then(Lang::parse).or_else(|| cookie.and_then(Lang::parse)) {
        return lang;
    }
    accept_language.and_then(from_accept_language).unwrap_or(Lang::En)
}

/// The supported language with the highest `q` in an `Accept-Language` header (ties: the first listed).
fn from_accept_language(header: &str) -> Option<Lang> {
    let mut best: Option<(f32, Lang)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let Some(lang) = parts.next().and_then(Lang::parse) else { continue };
        let q =
            parts.filter_map(|p| p.trim().strip_prefix("q=")).find_map(|q| q.trim().parse::<f32>().ok()).unwrap_or(1.0);
        if q > 0.0 && best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, lang));
        }
    }
    best.map(|(_, lang)| lang)
}

/// One language's strings, by key.
#[derive(Debug)]
pub struct Catalogue {
    strings: HashMap<&'static str, &'static str>,
}

impl Catalogue {
    /// `key = value` lines; `#` starts a comment line; values may hold `{name}` placeholders.
    fn parse(source: &'static str) -> Self {
        let strings = source
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| line.split_once('='))
            .map(|(k, v)| (k.trim(), v.trim()))
            .collect();
        Self { strings }
    }

    /// The string for `key`; the key itself when missing (a test keeps every used key in both catalogues).
    pub fn get<'a>(&self, key: &'a str) -> &'a str {
        self.strings.get(key).copied().unwrap_or(key)
    }

    /// The string for `key`, if the catalogue has it.
    pub fn lookup(&self, key: &str) -> Option<&'static str> {
        self.strings.get(key).copied()
    }

    /// The string for `key` with its `{name}` placeholders filled in.
    pub fn fill(&self, key: &str, values: &[(&str, &str)]) -> String {
        let mut text = self.get(key).to_owned();
        for (name, value) in values {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        text
    }

    pub fn entries(&self) -> impl Iterator<Item = (&'static str, &'static str)> + '_ {
        self.strings.iter().map(|(k, v)| (*k, *v))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    #[test]
    fn negotiation_prefers_query_then_cookie_then_browser() {
        assert_eq!(negotiate(Some("ru"), Some("en"), Some("en")), Lang::Ru);
        assert_eq!(negotiate(Some("xx"), Some("ru"), Some("en")), Lang::Ru);
        assert_eq!(negotiate(None, None, Some("de-DE,ru;q=0.8,en;q=0.5")), Lang::Ru);
        assert_eq!(negotiate(None, None, Some("en-GB,ru;q=0.9")), Lang::En);
        assert_eq!(negotiate(None, None, Some("ru-RU")), Lang::Ru);
        assert_eq!(negotiate(None, None, Some("fr, ru;q=0")), Lang::En);
        assert_eq!(negotiate(None, None, None), Lang::En);
    }

    fn keys(lang: Lang) -> BTreeSet<&'static str> {
        lang.catalogue().entries().map(|(k, _)| k).collect()
    }

    fn placeholders(text: &str) -> BTreeSet<String> {
        text.split('{').skip(1).filter_map(|rest| rest.split_once('}')).map(|(name, _)| name.to_owned()).collect()
    }

    #[test]
    fn both_catalogues_have_the_same_keys_and_placeholders() {
        let en = keys(Lang::En);
        let ru = keys(Lang::Ru);
        assert!(en.len() > 100, "the English catalogue looks truncated: {} keys", en.len());
        let only_en: Vec<_> = en.difference(&ru).collect();
        let only_ru: Vec<_> = ru.difference(&en).collect();
        assert!(only_en.is_empty() && only_ru.is_empty(), "missing in ru: {only_en:?}; missing in en: {only_ru:?}");
        for key in &en {
            let (e, r) = (Lang::En.catalogue().get(key), Lang::Ru.catalogue().get(key));
            assert!(!e.is_empty() && !r.is_empty(), "{key} is empty");
            assert_eq!(placeholders(e), placeholders(r), "{key}: placeholders differ between en and ru");
        }
        for (source, lang) in [(EN_SOURCE, "en"), (RU_SOURCE, "ru")] {
            let mut seen = BTreeSet::new();
            for line in source.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
                let (key, _) = line.split_once('=').unwrap_or_else(|| panic!("{lang}: not key = value: {line}"));
                assert!(seen.insert(key.trim()), "{lang}: {} is defined twice", key.trim());
            }
        }
    }

    /// The contents of a script's double-quoted strings (quotes inside '…', `…` and comments do not count).
    fn double_quoted(text: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut chars = text.chars().peekable();
        let mut open: Option<char> = None;
        let mut current = String::new();
        while let Some(c) = chars.next() {
            match open {
                None if c == '/' && chars.peek() == Some(&'/') => {
                    for c in chars.by_ref() {
                        if c == '\n' {
                            break;
                        }
                    }
                }
                None if c == '/' && chars.peek() == Some(&'*') => {
                    let mut last = ' ';
                    for c in chars.by_ref() {
                        if last == '*' && c == '/' {
                            break;
                        }
                        last = c;
                    }
                }
                None if matches!(c, '"' | '\'' | '`') => {
                    open = Some(c);
                    current.clear();
                }
                None => {}
                Some(_) if c == '\\' => {
                    chars.next();
                }
                Some(q) if c == q => {
                    if q == '"' {
                        out.push(current.clone());
                    }
                    open = None;
                }
                Some(_) => current.push(c),
            }
        }
        out
    }

    /// Every `export.*` key the document renderers (`src/export`) name exists; the keys they build from a
    /// name (`format!("export.{name}")`) are checked beside their tables (`export::pdf` tests).
    #[test]
    fn every_export_key_is_in_the_catalogue() {
        let en = keys(Lang::En);
        let (mut missing, mut used) = (Vec::new(), 0);
        let mut dirs = vec![Path::new(env!("CARGO_MANIFEST_DIR")).join("src/export")];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    dirs.push(path);
                    continue;
                }
                let text = std::fs::read_to_string(&path).unwrap();
                for (at, _) in text.match_indices("\"export.") {
                    let key = text[at + 1..].split('"').next().unwrap_or_default();
                    if key.contains('{') {
                        continue;
                    }
                    used += 1;
                    if !en.contains(key) {
                        missing.push(format!("{}: {key}", path.display()));
                    }
                }
            }
        }
        assert!(used > 30, "found only {used} uses: is the scan broken?");
        assert!(missing.is_empty(), "keys missing from the catalogue:\n{}", missing.join("\n"));
    }

    /// Every key a template (`s.t("…")`) or script (`t("…")`) asks for exists.
    #[test]
    fn every_used_key_is_in_the_catalogue() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let en = keys(Lang::En);
        let mut missing = Vec::new();
        let mut used = 0;
        for dir in ["templates", "static"] {
            for entry in std::fs::read_dir(root.join(dir)).unwrap() {
                let path = entry.unwrap().path();
                let Ok(text) = std::fs::read_to_string(&path) else { continue };
                for (at, _) in text.match_indices("t(\"") {
                    // `t(` itself, not the end of another name such as `import(` or `set(`.
                    let before = text[..at].chars().next_back().unwrap_or(' ');
                    if before.is_ascii_alphanumeric() || before == '_' || before == '$' {
                        continue;
                    }
                    let key = text[at + 3..].split('"').next().unwrap_or_default();
                    used += 1;
                    if !en.contains(key) {
                        missing.push(format!("{}: {key}", path.display()));
                    }
                }
            }
        }
        // Keys handed around before reaching `t` (`overlay("room.ended.title", …)`): any string literal in a
        // script that starts with a catalogue namespace must be a key.
        let namespaces: BTreeSet<&str> = en.iter().filter_map(|k| k.split('.').next()).collect();
        for entry in std::fs::read_dir(root.join("static")).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_none_or(|e| e != "js") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for literal in double_quoted(&text) {
                let looks_like_key = literal.contains('.')
                    && literal.chars().all(|c| c.is_ascii_alphanumeric() || c == '.' || c == '_')
                    && !literal.ends_with(".js")
                    && namespaces.contains(literal.split('.').next().unwrap_or_default());
                if looks_like_key && !en.contains(literal.as_str()) {
                    missing.push(format!("{}: {literal}", path.display()));
                }
            }
        }
        assert!(used > 100, "found only {used} uses: is the scan broken?");
        assert!(missing.is_empty(), "keys missing from the catalogue:\n{}", missing.join("\n"));
    }
}
