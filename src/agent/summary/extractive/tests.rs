//! The extractive summariser on small lectures in English and Russian: sentences, topics, questions and
//! assignments, each citing what was said.

use super::*;

use crate::agent::transcript::test_segment as seg;

#[test]
fn stopword_lists_are_sorted_for_binary_search() {
    for list in [STOPWORDS_EN, STOPWORDS_RU] {
        assert!(list.windows(2).all(|w| w[0] < w[1]), "{:?}", list.windows(2).find(|w| w[0] >= w[1]));
    }
}

#[test]
fn sentences_split_on_final_punctuation_only() {
    let split = split_sentences("Pi is 3.14 roughly. Really?! Yes… ok");
    let texts: Vec<&str> = split.iter().map(|(_, s)| s.as_str()).collect();
    assert_eq!(texts, ["Pi is 3.14 roughly.", "Really?!", "Yes…", "ok"]);
    assert_eq!(split[1].0, 20);
}

fn lecture() -> Vec<Segment> {
    vec![
        seg(
            "1",
            "Ann",
            0,
            9_000,
            "Today we study photosynthesis. Photosynthesis is how plants convert sunlight into chemical energy.",
        ),
        seg(
            "2",
            "Ann",
            10_000,
            19_000,
            "The chlorophyll in the leaves absorbs light. Chlorophyll absorbs red and blue light and reflects green.",
        ),
        seg("3", "Ann", 20_000, 28_000, "The chemical energy is stored as glucose. Plants use glucose to grow."),
        seg("4", "Bob", 30_000, 33_000, "What happens to photosynthesis at night?"),
        seg(
            "5",
            "Ann",
            34_000,
            40_000,
            "At night there is no sunlight, so photosynthesis stops. Plants keep respiring.",
        ),
        seg(
            "6",
            "Ann",
            41_000,
            50_000,
            "For next week, please read chapter four and submit the exercise on chlorophyll.",
        ),
        seg("7", "Ann", 51_000, 55_000, "Are there any questions about chlorophyll?"),
    ]
}

/// Every citation covers whole segments of the transcript (it starts at one's start and ends at one's
/// end) holding the words the item names or quotes, so nothing the summary shows is uncited.
fn assert_cites_the_transcript(summary: &Summary, segments: &[Segment]) {
    let check = |cite: Citation, words: &str| {
        let covered: Vec<&Segment> = segments.iter().filter(|s| cite.touches(s)).collect();
        assert_eq!(covered.first().map(|s| s.start_ms), Some(cite.start_ms), "{cite:?} starts at a segment");
        assert_eq!(covered.iter().map(|s| s.end_ms).max(), Some(cite.end_ms), "{cite:?} ends at a segment");
        let text = covered.iter().map(|s| s.text.to_lowercase()).collect::<Vec<_>>().join(" ");
        assert!(text.contains(&words.to_lowercase()), "{cite:?} covers {words:?}: {text}");
    };
    summary.key_topics.iter().for_each(|t| check(t.cite, &t.topic));
    summary.action_items.iter().for_each(|a| check(a.cite, &a.text));
    summary.qa.iter().for_each(|q| {
        check(q.cite, &q.question);
        check(q.cite, &q.answer);
    });
    assert_eq!(summary.clone().retain_cited(segments), 0);
}

#[test]
fn summarises_a_lecture_deterministically_citing_the_transcript() {
    let summary = summarise(&lecture(), "en");
    assert_eq!(summary, summarise(&lecture(), "en"), "the same transcript gives the same summary");
    assert_eq!(summary.kind, "extractive");
    assert!(summary.abstract_text.contains("photosynthesis") || summary.abstract_text.contains("Photosynthesis"));
    assert!(!summary.abstract_text.contains('?'), "questions are not part of the abstract: {}", summary.abstract_text);

    let topics: Vec<&str> = summary.key_topics.iter().map(|t| t.topic.as_str()).collect();
    assert!(topics.contains(&"photosynthesis"), "{topics:?}");
    assert!(topics.iter().any(|t| t.contains("chlorophyll")), "{topics:?}");
    assert!(topics.contains(&"chemical energy"), "{topics:?}");
    let photosynthesis = summary.key_topics.iter().find(|t| t.topic == "photosynthesis").unwrap();
    assert_eq!(
        photosynthesis.cite,
        Citation::new(0, 40_000),
        "a topic cites the stretch that discusses it, from the first mention's segment to the last's"
    );

    assert_eq!(summary.action_items.len(), 1, "{:?}", summary.action_items);
    assert!(summary.action_items[0].text.starts_with("For next week"));
    assert_eq!(summary.action_items[0].cite, Citation::new(41_000, 50_000), "its sentence's segment");

    assert_eq!(summary.qa.len(), 2, "{:?}", summary.qa);
    assert_eq!(summary.qa[0].question, "What happens to photosynthesis at night?");
    assert_eq!(summary.qa[0].answer, "At night there is no sunlight, so photosynthesis stops. Plants keep respiring.");
    assert_eq!(summary.qa[0].cite, Citation::new(30_000, 40_000), "from the question to the answer's end");
    assert_eq!(summary.qa[1].answer, "", "nobody answered the last question");
    assert_eq!(summary.qa[1].cite, Citation::new(51_000, 55_000), "the question's own segment");
    assert_cites_the_transcript(&summary, &lecture());
}

#[test]
fn a_topic_cites_where_it_is_discussed_most_not_where_it_is_first_named() {
    let segments = vec![
        seg("1", "Ann", 0, 3_000, "Entropy comes later."),
        seg("2", "Ann", 60_000, 64_000, "First, the history of heat engines."),
        seg("3", "Ann", 120_000, 124_000, "Watt improved the steam engine."),
        seg("4", "Ann", 600_000, 605_000, "Entropy measures disorder."),
        seg("5", "Ann", 610_000, 616_000, "The entropy of a closed system never decreases."),
        seg("6", "Ann", 620_000, 629_000, "So entropy explains why heat flows from hot to cold."),
        seg("7", "Ann", 1_500_000, 1_502_000, "To sum up: entropy."),
    ];
    let summary = summarise(&segments, "en");
    let entropy = summary.key_topics.iter().find(|t| t.topic == "entropy").unwrap();
    assert_eq!(entropy.cite, Citation::new(600_000, 629_000));
    assert_cites_the_transcript(&summary, &segments);
}

#[test]
fn items_of_one_segment_cite_it_and_keep_their_order() {
    let segments = vec![seg("1", "Ann", 5_000, 12_000, "Read chapter four. Submit the exercise by Friday.")];
    let summary = summarise(&segments, "en");
    let texts: Vec<&str> = summary.action_items.iter().map(|a| a.text.as_str()).collect();
    assert_eq!(texts, ["Read chapter four.", "Submit the exercise by Friday."]);
    assert!(summary.action_items.iter().all(|a| a.cite == Citation::new(5_000, 12_000)));
    assert_cites_the_transcript(&summary, &segments);
}

#[test]
fn sentence_times_are_interpolated_within_a_segment() {
    let s = sentences(&[seg("1", "Ann", 10_000, 20_000, "One two three. Four five six.")], Lang::En);
    assert_eq!(s[0].start_ms, 10_000);
    assert!((14_000..16_000).contains(&s[1].start_ms), "{}", s[1].start_ms);
}

#[test]
fn russian_lectures_get_questions_assignments_and_stemmed_topics() {
    let segments = vec![
        seg("1", "Анна", 0, 8_000, "Сегодня мы изучаем фотосинтез. Фотосинтез превращает свет в химическую энергию."),
        seg("2", "Анна", 9_000, 15_000, "Энергия фотосинтеза запасается в глюкозе."),
        seg("3", "Борис", 16_000, 19_000, "Почему листья зелёные?"),
        seg("4", "Анна", 20_000, 26_000, "Хлорофилл отражает зелёный свет."),
        seg("5", "Анна", 27_000, 33_000, "К следующему занятию прочитайте четвёртую главу."),
    ];
    let summary = summarise(&segments, "ru");
    assert_eq!(summary.language, "ru");
    assert!(summary.key_topics.iter().any(|t| t.topic == "фотосинтез"), "{:?}", summary.key_topics);
    assert_eq!(summary.qa.len(), 1);
    assert_eq!(summary.qa[0].answer, "Хлорофилл отражает зелёный свет.");
    assert_eq!(summary.qa[0].cite, Citation::new(16_000, 26_000));
    assert_eq!(summary.action_items.len(), 1);
    assert_eq!(summary.action_items[0].cite, Citation::new(27_000, 33_000));
    assert_cites_the_transcript(&summary, &segments);
}

#[test]
fn an_empty_lecture_has_an_empty_summary() {
    let summary = summarise(&[], "en");
    assert_eq!(summary.abstract_text, "");
    assert!(summary.key_topics.is_empty() && summary.action_items.is_empty() && summary.qa.is_empty());
}
