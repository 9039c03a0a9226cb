//! The chat-model summariser against canned answers: the prompt lines, lenient parsing, citations kept to
//! the lines shown, and the merge of a long lecture's parts.

use super::*;

/// Ann's segment: the model's tests need one speaker only.
fn seg(id: &str, start_ms: i64, end_ms: i64, text: &str) -> Segment {
    crate::agent::transcript::test_segment(id, "Ann", start_ms, end_ms, text)
}

/// Lines s1..s5; s1 ends where s2 starts, and nothing is said between 8.5 s and 12 s.
fn lecture() -> Vec<Segment> {
    vec![
        seg("a", 1_000, 4_000, "Plants make sugar from light."),
        seg("b", 4_000, 8_500, "Chlorophyll absorbs red and blue light."),
        seg("c", 12_000, 14_000, "Why are leaves green?"),
        seg("d", 14_500, 18_000, "They reflect green light."),
        seg("e", 20_000, 23_000, "Read chapter four by Monday."),
    ]
}

#[test]
fn the_model_sees_one_line_per_segment_with_an_id_to_cite_and_its_time() {
    let mut segments = lecture();
    segments[1].text = "Chlorophyll  absorbs\nred and blue light.".into();
    segments.push(seg("f", 3_723_000, 3_725_000, "Goodbye."));
    let lines = transcript_lines(&segments);
    assert_eq!(lines[0], "[s1 00:00:01] Ann: Plants make sugar from light.");
    assert_eq!(lines[1], "[s2 00:00:04] Ann: Chlorophyll absorbs red and blue light.");
    assert_eq!(lines[5], "[s6 01:02:03] Ann: Goodbye.");
}

#[test]
fn answers_are_read_leniently_and_their_citations_mapped_to_whole_lines() {
    let text = r#"Sure! ```json
            {"abstract": " About plants. ",
             "keyTopics": [{"topic": "photosynthesis", "segmentIds": ["s1", "S2"]},
                           {"title": "light", "segment_ids": "[s2 00:00:04]"},
                           {"name": "pigments", "segments": [2, "3"]}],
             "action_items": [{"item": "Read chapter 4", "startMs": "[20000]"}],
             "questions": [{"q": "Why green?", "a": " Reflection. ", "start_ms": "00:00:12", "endMs": 15000.0}]}
            ```"#;
    let (s, dropped) = parse_summary(text, &lecture(), 0..5).unwrap();
    assert_eq!(dropped, 0);
    assert_eq!(s.abstract_text, "About plants.");
    let topics: Vec<(&str, Citation)> = s.key_topics.iter().map(|t| (t.topic.as_str(), t.cite)).collect();
    assert_eq!(
        topics,
        [
            ("photosynthesis", Citation::new(1_000, 8_500)),
            ("light", Citation::new(4_000, 8_500)),
            ("pigments", Citation::new(4_000, 14_000)),
        ]
    );
    assert_eq!(s.action_items[0].text, "Read chapter 4");
    assert_eq!(s.action_items[0].cite, Citation::new(20_000, 23_000), "a time widens to its line");
    assert_eq!((s.qa[0].question.as_str(), s.qa[0].answer.as_str()), ("Why green?", "Reflection."));
    assert_eq!(s.qa[0].cite, Citation::new(12_000, 18_000), "a clock stands for its whole second");
    assert!(!s.key_topics.iter().any(|t| t.edited));

    assert!(parse_summary("I cannot summarise this.", &lecture(), 0..5).is_none());
    assert!(parse_summary("{\"keyTopics\": []}", &lecture(), 0..5).is_none(), "no abstract, no summary");
}

#[test]
fn items_citing_what_is_not_in_the_transcript_are_dropped_and_counted() {
    let text = r#"{"abstract": "About plants.",
            "keyTopics": [
                "a bare string",
                {"topic": "line zero", "segmentIds": ["s0"]},
                {"topic": "past the last line", "segmentIds": ["s6"]},
                {"topic": "one unknown of two", "segmentIds": ["s1", "s99"]},
                {"topic": "no ids", "segmentIds": []},
                {"topic": "not an id", "segmentIds": ["intro"]},
                {"topic": "ids win over times", "segmentIds": ["s99"], "startMs": 1000},
                {"topic": "uncited"},
                {"topic": "kept", "segmentIds": ["s4"]}],
            "actionItems": [
                {"text": "between lines", "startMs": 9000, "endMs": 11000},
                {"text": "before the lecture", "startMs": -5},
                {"text": "after it", "startMs": 60000, "endMs": 70000},
                {"text": "a placeholder", "startMs": 0}],
            "qa": [{"question": "", "segmentIds": ["s99"]}]}"#;
    let (s, dropped) = parse_summary(text, &lecture(), 0..5).unwrap();
    assert_eq!(dropped, 12, "every cited item that cites nothing said; an empty question is no item");
    assert_eq!(s.key_topics.len(), 1);
    assert_eq!((s.key_topics[0].topic.as_str(), s.key_topics[0].cite), ("kept", Citation::new(14_500, 18_000)));
    assert!(s.action_items.is_empty() && s.qa.is_empty());
}

#[test]
fn a_part_may_cite_only_the_lines_it_was_shown() {
    let text = r#"{"abstract": "Lines s3 to s5.", "keyTopics": [
            {"topic": "shown", "segmentIds": ["s3", "s4"]},
            {"topic": "a line of the part before", "segmentIds": ["s2"]},
            {"topic": "straddling the parts", "segmentIds": ["s2", "s3"]},
            {"topic": "a time of the part before", "startMs": 2000},
            {"topic": "a time shown", "startMs": "00:00:12"}]}"#;
    let (s, dropped) = parse_summary(text, &lecture(), 2..5).unwrap();
    assert_eq!(dropped, 3);
    let topics: Vec<(&str, Citation)> = s.key_topics.iter().map(|t| (t.topic.as_str(), t.cite)).collect();
    assert_eq!(topics, [("shown", Citation::new(12_000, 18_000)), ("a time shown", Citation::new(12_000, 14_000))]);
}

#[test]
fn parts_go_to_the_merge_with_the_ids_of_the_lines_they_cite() {
    let segments = lecture();
    let part = Summary {
        abstract_text: "Part one.".into(),
        key_topics: vec![
            Topic { topic: "sugar".into(), cite: Citation::new(1_000, 4_000), edited: false },
            Topic { topic: "light".into(), cite: Citation::new(1_000, 8_500), edited: false },
        ],
        action_items: vec![ActionItem { text: "Read".into(), cite: Citation::new(20_000, 23_000), edited: false }],
        qa: vec![QuestionAnswer {
            question: "Why green?".into(),
            answer: "Reflection.".into(),
            cite: Citation::new(12_000, 18_000),
            edited: false,
        }],
        kind: KIND.into(),
        language: "en".into(),
    };
    let json = summary_json(&part, &segments);
    assert_eq!(json["keyTopics"][0]["segmentIds"], json!(["s1"]), "a line that only touches is not cited");
    assert_eq!(json["keyTopics"][1]["segmentIds"], json!(["s1", "s2"]));
    assert_eq!(json["actionItems"][0]["segmentIds"], json!(["s5"]));
    assert_eq!(json["qa"][0]["segmentIds"], json!(["s3", "s4"]));
    let (back, dropped) = parse_summary(&json.to_string(), &segments, 0..5).unwrap();
    assert_eq!(
        (back.key_topics, back.action_items, back.qa, dropped),
        (part.key_topics, part.action_items, part.qa, 0)
    );
}

#[test]
fn transcripts_are_cut_at_line_boundaries() {
    let lines: Vec<String> = (0..10).map(|i| format!("[{i}] A: {}", "x".repeat(40))).collect();
    let runs = chunk(&lines, 100);
    assert_eq!(runs, [0..2, 2..4, 4..6, 6..8, 8..10]);
    assert!(runs.iter().all(|r| lines_text(&lines[r.clone()]).len() <= 100));
    assert_eq!(lines_text(&lines[2..4]), format!("{}\n{}\n", lines[2], lines[3]));
    assert_eq!(chunk(&["x".repeat(150), "y".into()], 100), [0..1, 1..2], "a longer line is a run of its own");
    assert!(chunk(&[], 100).is_empty());
}

#[test]
fn prompts_ask_for_the_lectures_language() {
    assert!(system_prompt("ru").contains("Russian"));
    assert!(system_prompt("sw").contains("`sw`"));
    let prompt = system_prompt("en");
    // OpenAI's JSON mode refuses a request whose messages never say "JSON".
    assert!(prompt.contains("JSON") && prompt.contains("segmentIds") && prompt.contains("[s12 00:03:12]"));
}
