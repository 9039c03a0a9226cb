//! The built-in extractive summariser: offline and deterministic. It ranks the transcript's own sentences
//! (centroid weighting with redundancy control) for the abstract, picks frequent distinctive terms as
//! topics, and finds questions, their answers and assignments with language-specific cues (English and
//! Russian; other languages get ranking and `?`-questions only). Every item cites whole transcript
//! segments: a topic the stretch where it is discussed most, an action item the segment that gives it, a
//! question the segments from the question to its answer.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use super::{ActionItem, Citation, QuestionAnswer, Summary, Topic};
use crate::agent::transcript::{Segment, ordered};

/// The label this summariser puts on its output.
pub const KIND: &str = "extractive";
/// Version of the method, recorded as the artifact's model.
pub const MODEL: &str = "confctl-extractive-1";

const MAX_ABSTRACT_SENTENCES: usize = 5;
const MAX_ABSTRACT_CHARS: usize = 900;
const MAX_TOPICS: usize = 6;
const MAX_ACTION_ITEMS: usize = 6;
const MAX_QA: usize = 6;
/// An answer must start this soon after its question.
const ANSWER_WINDOW_MS: i64 = 120_000;
/// A topic cites the stretch of this length (from one mention on) that mentions it most: about one passage
/// of a lecture, so the citation lands where the topic is explained rather than where it is first named.
const TOPIC_WINDOW_MS: i64 = 180_000;

/// One sentence of the transcript with where it came from.
#[derive(Debug, Clone)]
struct Sentence {
    text: String,
    /// Interpolated from the sentence's position in its segment: for measuring distances, never cited.
    start_ms: i64,
    speaker: String,
    /// Which segment it came from (its index in transcript order).
    segment: usize,
    /// Content-word stems (stopwords removed), in order.
    terms: Vec<String>,
    /// (stem, surface form) for every content word, to name topics as people wrote them.
    words: Vec<(String, String)>,
}

/// Summarises `segments` in `language` (a code such as `en` or `ru`).
pub fn summarise(segments: &[Segment], language: &str) -> Summary {
    let lang = Lang::of(language);
    let segments = ordered(segments);
    let sentences = sentences(&segments, lang);
    let weights = TermWeights::new(&sentences);
    Summary {
        abstract_text: abstract_of(&sentences, &weights),
        key_topics: topics(&sentences, &segments, &weights),
        action_items: action_items(&sentences, &segments, lang),
        qa: questions_and_answers(&sentences, &segments, lang, &weights),
        kind: KIND.to_owned(),
        language: language.to_owned(),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    En,
    Ru,
    Other,
}

impl Lang {
    fn of(code: &str) -> Self {
        match code.split('-').next().unwrap_or_default() {
            "en" => Self::En,
            "ru" => Self::Ru,
            _ => Self::Other,
        }
    }
}

/// Splits every segment into sentences; a sentence's time is interpolated from its position in the segment.
fn sentences(segments: &[Segment], lang: Lang) -> Vec<Sentence> {
    let mut out = Vec::new();
    for (index, segment) in segments.iter().enumerate() {
        let text = segment.text.split_whitespace().collect::<Vec<_>>().join(" ");
        let total = text.chars().count().max(1) as i64;
        let span = (segment.end_ms - segment.start_ms).max(0);
        for (offset, sentence) in split_sentences(&text) {
            let words = content_words(&sentence, lang);
            out.push(Sentence {
                start_ms: segment.start_ms + span * offset as i64 / total,
                speaker: segment.speaker_identity.clone(),
                segment: index,
                terms: words.iter().map(|(stem, _)| stem.clone()).collect(),
                words,
                text: sentence,
            });
        }
    }
    out
}

/// Sentences of `text` with their character offsets: a sentence ends at `.`, `!`, `?` or `…` followed by a
/// space or the end (so `3.5` and `e.g.x` do not split).
fn split_sentences(text: &str) -> Vec<(usize, String)> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..chars.len() {
        let ends = matches!(chars[i], '.' | '!' | '?' | '…')
            && chars.get(i + 1).is_none_or(|c| c.is_whitespace())
            // `?!`, `...`: end at the last mark.
            && !chars.get(i + 1).is_some_and(|c| matches!(c, '.' | '!' | '?'));
        if ends || i + 1 == chars.len() {
            let sentence: String = chars[start..=i].iter().collect();
            let trimmed = sentence.trim();
            if trimmed.chars().any(char::is_alphanumeric) {
                let lead = sentence.chars().take_while(|c| c.is_whitespace()).count();
                out.push((start + lead, trimmed.to_owned()));
            }
            start = i + 1;
        }
    }
    out
}

fn lower_words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric() && c != '\'' && c != '’')
        .map(|w| w.trim_matches(|c| c == '\'' || c == '’').to_lowercase())
        .filter(|w| !w.is_empty())
        .collect()
}

/// (stem, surface) for every word that carries content.
fn content_words(text: &str, lang: Lang) -> Vec<(String, String)> {
    lower_words(text)
        .into_iter()
        .filter(|w| w.chars().count() >= 3 && !w.chars().all(|c| c.is_ascii_digit()) && !is_stopword(w))
        .map(|w| (stem(&w, lang), w))
        .collect()
}

fn is_stopword(word: &str) -> bool {
    STOPWORDS_EN.binary_search(&word).is_ok() || STOPWORDS_RU.binary_search(&word).is_ok()
}

/// A light stemmer: English plurals; Russian case and number endings. Enough to count "energy" and
/// "energies", or "фотосинтез" and "фотосинтеза", as one term.
fn stem(word: &str, lang: Lang) -> String {
    let is_cyrillic = word.chars().any(|c| ('а'..='я').contains(&c) || c == 'ё');
    if lang == Lang::Ru || is_cyrillic {
        let chars: Vec<char> = word.chars().collect();
        for ending in RU_ENDINGS {
            let n = ending.chars().count();
            if chars.len() >= n + 4 && word.ends_with(ending) {
                return chars[..chars.len() - n].iter().collect();
            }
        }
        return word.to_owned();
    }
    let n = word.len();
    if n > 4 && word.ends_with("ies") {
        return format!("{}y", &word[..n - 3]);
    }
    if n > 4 && word.ends_with('s') && !word.ends_with("ss") && !word.ends_with("us") && !word.ends_with("is") {
        return word[..n - 1].to_owned();
    }
    word.to_owned()
}

/// How much each term says about this lecture: frequent in the lecture, but not in every sentence.
struct TermWeights {
    weight: HashMap<String, f64>,
}

impl TermWeights {
    fn new(sentences: &[Sentence]) -> Self {
        let n = sentences.len().max(1) as f64;
        let mut tf: HashMap<String, f64> = HashMap::new();
        let mut df: HashMap<String, f64> = HashMap::new();
        for s in sentences {
            for t in &s.terms {
                *tf.entry(t.clone()).or_default() += 1.0;
            }
            for t in s.terms.iter().collect::<BTreeSet<_>>() {
                *df.entry(t.clone()).or_default() += 1.0;
            }
        }
        let weight = tf.into_iter().map(|(t, f)| (t.clone(), f * (1.0 + n / df[&t]).ln())).collect();
        Self { weight }
    }

    fn of(&self, term: &str) -> f64 {
        self.weight.get(term).copied().unwrap_or(0.0)
    }

    /// A sentence's centrality: the weight of its distinct terms, normalised so long sentences do not win
    /// by length alone.
    fn sentence_score(&self, s: &Sentence) -> f64 {
        let distinct: BTreeSet<&String> = s.terms.iter().collect();
        if distinct.is_empty() {
            return 0.0;
        }
        distinct.iter().map(|t| self.of(t)).sum::<f64>() / (distinct.len() as f64).sqrt()
    }
}

fn overlap(a: &Sentence, b: &Sentence) -> f64 {
    let a: BTreeSet<&String> = a.terms.iter().collect();
    let b: BTreeSet<&String> = b.terms.iter().collect();
    let union = a.union(&b).count();
    if union == 0 { 0.0 } else { a.intersection(&b).count() as f64 / union as f64 }
}

/// The most central sentences, chosen one by one while penalising repetition of what is already chosen
/// (maximal marginal relevance), then put back in lecture order.
fn abstract_of(sentences: &[Sentence], weights: &TermWeights) -> String {
    let candidates: Vec<usize> = (0..sentences.len())
        .filter(|&i| !is_question(&sentences[i].text, Lang::Other) && sentences[i].terms.len() >= 2)
        .collect();
    let wanted = sentences.len().div_ceil(8).clamp(1, MAX_ABSTRACT_SENTENCES);
    let max_score =
        candidates.iter().map(|&i| weights.sentence_score(&sentences[i])).fold(0.0_f64, f64::max).max(f64::EPSILON);
    let mut chosen: Vec<usize> = Vec::new();
    let mut length = 0;
    while chosen.len() < wanted {
        let best = candidates
            .iter()
            .filter(|i| !chosen.contains(i))
            .map(|&i| {
                let relevance = weights.sentence_score(&sentences[i]) / max_score;
                let redundancy = chosen.iter().map(|&j| overlap(&sentences[i], &sentences[j])).fold(0.0, f64::max);
                (i, 0.7 * relevance - 0.3 * redundancy)
            })
            // Highest score; ties go to the earlier sentence, so the result never depends on hash order.
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)));
        let Some((i, _)) = best else { break };
        let len = sentences[i].text.chars().count();
        if !chosen.is_empty() && length + len > MAX_ABSTRACT_CHARS {
            break;
        }
        length += len + 1;
        chosen.push(i);
    }
    chosen.sort_unstable();
    chosen.iter().map(|&i| sentences[i].text.as_str()).collect::<Vec<_>>().join(" ")
}

/// Distinctive terms and recurring two-word phrases, each citing where it is discussed most.
fn topics(sentences: &[Sentence], segments: &[Segment], weights: &TermWeights) -> Vec<Topic> {
    // Surface forms per stem, to name a topic the way it was said most often.
    let mut forms: HashMap<&str, BTreeMap<&str, usize>> = HashMap::new();
    // The sentences (indices, in lecture order) that mention each stem and each phrase.
    let mut mentions: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut pairs: BTreeMap<(&str, &str), (usize, Vec<usize>, String)> = BTreeMap::new();
    let mention = |list: &mut Vec<usize>, i: usize| {
        if list.last() != Some(&i) {
            list.push(i);
        }
    };
    for (i, s) in sentences.iter().enumerate() {
        for (stem, surface) in &s.words {
            *forms.entry(stem.as_str()).or_default().entry(surface.as_str()).or_default() += 1;
            mention(mentions.entry(stem.as_str()).or_default(), i);
        }
        // Adjacent content words with nothing but whitespace between them in the sentence.
        let lower = s.text.to_lowercase();
        for pair in s.words.windows(2) {
            let phrase = format!("{} {}", pair[0].1, pair[1].1);
            if pair[0].0 != pair[1].0 && lower.contains(&phrase) {
                let entry = pairs.entry((&pair[0].0, &pair[1].0)).or_insert_with(|| (0, Vec::new(), phrase));
                entry.0 += 1;
                mention(&mut entry.1, i);
            }
        }
    }
    let name = |stem: &str| -> String {
        forms
            .get(stem)
            .and_then(|f| f.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0))).map(|(w, _)| (*w).to_owned()))
            .unwrap_or_else(|| stem.to_owned())
    };
    // (score, name, stems, mentions); every candidate has at least one mention.
    let mut candidates: Vec<(f64, String, Vec<&str>, &[usize])> = Vec::new();
    for ((a, b), (count, at, phrase)) in &pairs {
        if *count >= 2 {
            let score = *count as f64 * (weights.of(a) + weights.of(b)) / 2.0 * 0.6;
            candidates.push((score, phrase.clone(), vec![*a, *b], at));
        }
    }
    for (stem, at) in &mentions {
        let count = forms.get(stem).map_or(0, |f| f.values().sum::<usize>());
        if count >= 2 || sentences.len() < 8 {
            candidates.push((weights.of(stem), name(stem), vec![*stem], at));
        }
    }
    // Highest score; ties go to the earlier first mention, then the name, so hash order never decides.
    candidates.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.3.first().cmp(&b.3.first())).then(a.1.cmp(&b.1)));
    let mut covered: BTreeSet<&str> = BTreeSet::new();
    let mut out = Vec::new();
    for (_, topic, stems, at) in candidates {
        if stems.iter().all(|s| covered.contains(s)) {
            continue;
        }
        covered.extend(stems);
        let Some(cite) = densest(at, sentences, segments) else { continue };
        out.push(Topic { topic, cite, edited: false });
        if out.len() == MAX_TOPICS {
            break;
        }
    }
    out
}

/// The stretch where the mentioning sentences `at` (in lecture order) are densest: of the windows of
/// [`TOPIC_WINDOW_MS`] that start at a mention, the one holding the most mentions (the earliest on ties),
/// cited from its first mention's segment to its last's.
fn densest(at: &[usize], sentences: &[Sentence], segments: &[Segment]) -> Option<Citation> {
    let mentioned: Vec<&Sentence> = at.iter().filter_map(|&i| sentences.get(i)).collect();
    let (mut best, mut last) = ((0, 0), 0);
    for (first, from) in mentioned.iter().enumerate() {
        last = last.max(first);
        while mentioned.get(last + 1).is_some_and(|s| s.start_ms - from.start_ms <= TOPIC_WINDOW_MS) {
            last += 1;
        }
        if last - first > best.1 - best.0 {
            best = (first, last);
        }
    }
    cite(mentioned.get(best.0)?, mentioned.get(best.1)?, segments)
}

/// From the segment of sentence `from` to the end of the segment of sentence `to`: whole segments, in their
/// own times, so a citation covers what was said and never a guessed moment between or past it.
fn cite(from: &Sentence, to: &Sentence, segments: &[Segment]) -> Option<Citation> {
    Citation::of(&[segments.get(from.segment)?, segments.get(to.segment)?])
}

fn is_question(text: &str, lang: Lang) -> bool {
    let text = text.trim();
    if text.ends_with('?') {
        return true;
    }
    let words = lower_words(text);
    let first = words.first().map(String::as_str).unwrap_or_default();
    match lang {
        Lang::En => words.len() >= 3 && QUESTION_WORDS_EN.contains(&first),
        Lang::Ru => words.len() >= 3 && (QUESTION_WORDS_RU.contains(&first) || words.get(1).is_some_and(|w| w == "ли")),
        Lang::Other => false,
    }
}

/// Questions and what followed them: the next speaker's sentences, or the asker's own explanation.
fn questions_and_answers(
    sentences: &[Sentence],
    segments: &[Segment],
    lang: Lang,
    weights: &TermWeights,
) -> Vec<QuestionAnswer> {
    let mut found: Vec<(f64, usize, QuestionAnswer)> = Vec::new();
    for (i, s) in sentences.iter().enumerate() {
        if !is_question(&s.text, lang) || s.terms.is_empty() {
            continue;
        }
        let following: Vec<&Sentence> = sentences[i + 1..]
            .iter()
            .take_while(|a| !is_question(&a.text, lang) && a.start_ms - s.start_ms <= ANSWER_WINDOW_MS)
            .collect();
        // An answer by someone else is the answer; otherwise the asker answered their own question. It is
        // the first utterance (segment) of the answer only: what follows is usually the lecture moving on.
        let first = following.iter().find(|a| a.speaker != s.speaker).or(following.first());
        let answer: Vec<&str> = following
            .iter()
            .skip_while(|a| first.is_some_and(|f| a.segment != f.segment))
            .take_while(|a| first.is_some_and(|f| a.segment == f.segment))
            .take(2)
            .map(|a| a.text.as_str())
            .collect();
        let score = weights.sentence_score(s) + if answer.is_empty() { 0.0 } else { 1.0 };
        // From the question to the end of the answer's segment (the question's own when none followed).
        let Some(cite) = cite(s, first.copied().unwrap_or(s), segments) else { continue };
        found.push((
            score,
            i,
            QuestionAnswer { question: s.text.clone(), answer: answer.join(" "), cite, edited: false },
        ));
    }
    keep_best(found, MAX_QA)
}

/// Sentences that ask the audience to do something: homework, reading, deadlines, exams.
fn action_items(sentences: &[Sentence], segments: &[Segment], lang: Lang) -> Vec<ActionItem> {
    let cues: &[&str] = match lang {
        Lang::En => ACTION_CUES_EN,
        Lang::Ru => ACTION_CUES_RU,
        Lang::Other => &[],
    };
    let mut found = Vec::new();
    for (i, s) in sentences.iter().enumerate() {
        if is_question(&s.text, lang) {
            continue;
        }
        let padded = format!(" {} ", lower_words(&s.text).join(" "));
        let hits = cues.iter().filter(|cue| padded.contains(*cue)).count();
        if hits == 0 {
            continue;
        }
        // The sentence's segment.
        let Some(cite) = cite(s, s, segments) else { continue };
        found.push((hits as f64, i, ActionItem { text: s.text.clone(), cite, edited: false }));
    }
    keep_best(found, MAX_ACTION_ITEMS)
}

/// The `n` best-scored items (earlier first on ties), in lecture order. Each item comes with the index of
/// its sentence: several items can cite one segment, and their order is still the sentences'.
fn keep_best<T>(mut items: Vec<(f64, usize, T)>, n: usize) -> Vec<T> {
    items.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    items.truncate(n);
    items.sort_by_key(|item| item.1);
    items.into_iter().map(|(_, _, t)| t).collect()
}

#[rustfmt::skip]
const QUESTION_WORDS_EN: &[&str] = &[
    "what", "why", "how", "when", "where", "who", "whom", "whose", "which", "isn't", "aren't", "doesn't",
];
#[rustfmt::skip]
const QUESTION_WORDS_RU: &[&str] = &[
    "что", "почему", "зачем", "как", "когда", "где", "куда", "откуда", "кто", "какой", "какая", "какое", "какие",
    "сколько", "чем",
];

/// Matched against ` words joined by single spaces `, so each cue is padded with spaces where it must
/// match whole words.
#[rustfmt::skip]
const ACTION_CUES_EN: &[&str] = &[
    " homework ", " assignment", " exercise", " due ", " deadline", " submit", " hand in ", " read chapter",
    " read the ", " prepare ", " don't forget", " do not forget", " remember to ", " make sure ", " next week",
    " next time", " next lecture", " by monday", " by friday", " until ", " you should ", " you need to ",
    " you must ", " please ", " exam ", " quiz ", " project ", " problem set", " practice ", " review ",
];
#[rustfmt::skip]
const ACTION_CUES_RU: &[&str] = &[
    " домашн", " задани", " задач", " упражнени", " сдать", " сдайте", " сдаёте", " срок", " дедлайн",
    " прочитайте", " прочитать", " прочтите", " подготовьте", " подготовиться", " не забудьте", " к следующ",
    " на следующ", " до понедельника", " до пятницы", " нужно ", " необходимо", " должны ", " пожалуйста",
    " экзамен", " контрольн", " зачёт", " зачет", " проект", " повторите", " решите", " выполните",
];

/// Russian endings stripped by the stemmer, longest first.
#[rustfmt::skip]
const RU_ENDINGS: &[&str] = &[
    "ями", "ами", "ого", "его", "ому", "ему", "ыми", "ими", "ать", "ять", "ить", "ах", "ях", "ой", "ей", "ую", "юю",
    "ая", "яя", "ое", "ее", "ые", "ие", "ый", "ий", "ом", "ем", "ам", "ям", "ов", "ев", "ью", "а", "я", "о", "е",
    "ы", "и", "у", "ю", "ь",
];

/// Sorted (binary search).
#[rustfmt::skip]
const STOPWORDS_EN: &[&str] = &[
    "about", "above", "after", "again", "against", "all", "also", "and", "any", "are", "aren't", "because", "been",
    "before", "being", "below", "between", "both", "but", "can", "can't", "cannot", "could", "couldn't", "did",
    "didn't", "does", "doesn't", "doing", "don't", "down", "during", "each", "even", "every", "few", "for", "from",
    "further", "get", "gets", "going", "gonna", "good", "got", "had", "hadn't", "has", "hasn't", "have", "haven't",
    "having", "he'd", "he'll", "he's", "her", "here", "here's", "hers", "herself", "him", "himself", "his", "how",
    "how's", "i'd", "i'll", "i'm", "i've", "into", "isn't", "it's", "its", "itself", "just", "know", "let's",
    "like", "look", "lot", "make", "many", "may", "might", "more", "most", "much", "must", "mustn't", "myself",
    "need", "nor", "not", "now", "off", "okay", "once", "one", "only", "other", "ought", "our", "ours", "ourselves",
    "out", "over", "own", "really", "right", "same", "say", "see", "shall", "shan't", "she", "she'd", "she'll",
    "she's", "should", "shouldn't", "some", "something", "such", "than", "that", "that's", "the", "their", "theirs",
    "them", "themselves", "then", "there", "there's", "these", "they", "they'd", "they'll", "they're", "they've",
    "thing", "things", "think", "this", "those", "through", "too", "two", "under", "until", "very", "want", "was",
    "wasn't", "way", "we'd", "we'll", "we're", "we've", "well", "were", "weren't", "what", "what's", "when",
    "when's", "where", "where's", "which", "while", "who", "who's", "whom", "why", "why's", "will", "with", "won't",
    "would", "wouldn't", "yeah", "yes", "you", "you'd", "you'll", "you're", "you've", "your", "yours", "yourself",
    "yourselves",
];

/// Sorted (binary search).
#[rustfmt::skip]
const STOPWORDS_RU: &[&str] = &[
    "без", "более", "будем", "будет", "будете", "будут", "был", "была", "были", "было", "быть", "вам", "вас",
    "весь", "вот", "все", "всего", "всех", "всё", "где", "даже", "для", "его", "ее", "если", "есть", "ещё", "здесь",
    "и", "или", "им", "их", "как", "какой", "когда", "которая", "которые", "который", "кто", "лишь", "меня", "мне",
    "может", "можно", "мой", "мы", "над", "надо", "нас", "наш", "него", "нее", "нет", "неё", "ним", "них", "ничего",
    "но", "ну", "она", "они", "оно", "очень", "под", "после", "потому", "почему", "при", "про", "раз", "сам",
    "свой", "себя", "сейчас", "так", "также", "такой", "там", "теперь", "то", "тогда", "того", "тоже", "только",
    "том", "тот", "тут", "уже", "хорошо", "чем", "через", "что", "чтобы", "эта", "эти", "это", "этого", "этой",
    "этом", "этот",
];

#[cfg(test)]
mod tests;
