//! Lecture summaries by an OpenAI-compatible chat model, against the chat-completions double (which refuses
//! what OpenAI refuses): the request (model, key, JSON mode, the lecture's language, transcript lines with ids
//! and times), the model's citations mapped to transcript ranges and the invented ones dropped, long
//! transcripts in parts — each citing only its own lines — merged into one, a three-hour lecture within an
//! 8k context, retries on overload and on malformed answers, servers without JSON mode, readable failures;
//! and through the worker, the artifact and lecture page confctl shows when the model works (without the
//! items it invented) and when it does not (the transcript is kept either way).

use std::time::{Duration, Instant};

use confctl::agent::summary::llm::LlmSummariser;
use confctl::agent::summary::{Citation, Extras, Summariser, Summary};
use confctl::agent::transcript::Segment;
use confctl::secret::Secret;
use confctl_doubles::llm::{estimated_tokens, user_message};
use confctl_doubles::webhook::events;
use confctl_doubles::{LlmDouble, LlmReply};
use serde_json::{Value, json};

use crate::support::agent::RunningAgent;
use crate::support::{self, Browser, Db, WithLiveKit};

fn seg(id: &str, start_ms: i64, text: &str) -> Segment {
    Segment {
        segment_id: id.into(),
        speaker_identity: "h_ada".into(),
        speaker_name: "Ada".into(),
        text: text.into(),
        start_ms,
        end_ms: start_ms + 3_000,
        language: "ru".into(),
        provider: "whisper".into(),
    }
}

/// Lines s1..s5: 1–4 s, 5–8 s, 9–12 s, 12–15 s, 16–19 s.
fn lecture() -> Vec<Segment> {
    vec![
        seg("1", 1_000, "Сегодня мы изучаем фотосинтез."),
        seg("2", 5_000, "Растения превращают свет в химическую энергию."),
        seg("3", 9_000, "Почему листья зелёные?"),
        seg("4", 12_000, "Хлорофилл отражает зелёный свет."),
        seg("5", 16_000, "К следующему занятию прочитайте четвёртую главу."),
    ]
}

const ANSWER: &str = r#"{"abstract": "Лекция о фотосинтезе.",
  "keyTopics": [{"topic": "фотосинтез", "segmentIds": ["s1", "s2"]}, {"topic": "хлорофилл", "segmentIds": ["s4"]}],
  "actionItems": [{"text": "Прочитать четвёртую главу", "segmentIds": ["s5"]}],
  "qa": [{"question": "Почему листья зелёные?", "answer": "Хлорофилл отражает зелёный свет.", "segmentIds": ["s3", "s4"]}]}"#;

/// [`ANSWER`] with items citing what the transcript does not have, in the ways models get it wrong.
const ANSWER_WITH_INVENTIONS: &str = r#"{"abstract": "Лекция о фотосинтезе.",
  "keyTopics": [{"topic": "фотосинтез", "segmentIds": ["s1", "s2"]}, {"topic": "дыхание", "segmentIds": ["s6"]},
                {"topic": "хлорофилл", "segmentIds": ["s4"]}, {"topic": "клетки"}, {"topic": "митоз", "segmentIds": ["s0"]}],
  "actionItems": [{"text": "Прочитать четвёртую главу", "segmentIds": ["s5"]},
                  {"text": "Сдать реферат", "startMs": 60000, "endMs": 62000}],
  "qa": [{"question": "Почему листья зелёные?", "answer": "Хлорофилл отражает зелёный свет.", "segmentIds": ["s3", "s4"]},
         {"question": "Что такое ксилема?", "answer": "", "segmentIds": ["s2", "s17"]}]}"#;

/// What [`ANSWER`] says, as confctl maps it: whole lines' ranges.
fn assert_answer_mapped(summary: &Summary) {
    let topics: Vec<(&str, Citation)> = summary.key_topics.iter().map(|t| (t.topic.as_str(), t.cite)).collect();
    assert_eq!(topics, [("фотосинтез", Citation::new(1_000, 8_000)), ("хлорофилл", Citation::new(12_000, 15_000))]);
    assert_eq!(summary.action_items.len(), 1, "{:?}", summary.action_items);
    assert_eq!(summary.action_items[0].cite, Citation::new(16_000, 19_000));
    assert_eq!(summary.qa.len(), 1, "{:?}", summary.qa);
    assert_eq!(summary.qa[0].cite, Citation::new(9_000, 15_000), "from the question to the end of its answer");
}

/// The ids of the transcript lines a text shows or cites (`[s12 ` or `"s12"`), in order.
fn line_ids(text: &str) -> Vec<usize> {
    text.match_indices('s')
        .filter(|(i, _)| matches!(text[..*i].chars().last(), Some('[' | '"')))
        .filter_map(|(i, _)| text[i + 1..].chars().take_while(char::is_ascii_digit).collect::<String>().parse().ok())
        .collect()
}

fn summariser(double: &LlmDouble) -> LlmSummariser {
    LlmSummariser::new(&double.url().parse().unwrap(), "llama3.1:8b".into(), Some(Secret::new("sk-test")))
        .unwrap()
        .with_limits(24_000, Duration::from_millis(10))
}

fn extras() -> Extras {
    Extras { title: "Биология".into(), speakers: vec!["Ada".into(), "Борис".into()] }
}

#[tokio::test]
async fn the_model_gets_the_transcript_with_line_ids_and_its_citations_become_ranges() {
    confctl::tls_provider();
    let double = LlmDouble::start(vec![LlmReply::Content(format!("```json\n{ANSWER}\n```"))]).await.unwrap();
    double.require_key("sk-test");
    let summary = summariser(&double).summarise(&lecture(), &extras(), "ru").await.unwrap();
    assert_eq!(summary.kind, "llm");
    assert_eq!(summary.language, "ru");
    assert_eq!(summary.abstract_text, "Лекция о фотосинтезе.");
    assert_answer_mapped(&summary);

    let requests = double.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r["model"], "llama3.1:8b");
    assert_eq!(r["response_format"]["type"], "json_object");
    let system = r["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("Russian") && system.contains("segmentIds"), "{system}");
    let user = double.user_message(0);
    assert!(user.contains("[s3 00:00:09] Ada: Почему листья зелёные?"), "{user}");
    assert!(user.contains("Speakers: Ada, Борис"), "{user}");
    assert!(user.contains("Lecture: Биология"), "{user}");
}

#[tokio::test]
async fn items_citing_lines_that_do_not_exist_are_dropped() {
    confctl::tls_provider();
    let double = LlmDouble::start(vec![LlmReply::Content(ANSWER_WITH_INVENTIONS.to_owned())]).await.unwrap();
    let summary = summariser(&double).summarise(&lecture(), &extras(), "ru").await.unwrap();
    assert_answer_mapped(&summary);
    assert_eq!(double.requests().len(), 1, "an answer with invented citations is used, without them, not retried");
}

#[tokio::test]
async fn long_transcripts_are_summarised_in_parts_each_citing_its_own_lines_and_merged() {
    confctl::tls_provider();
    // Each part cites its first and last line, and the line after it (which that request did not show);
    // the merge cites the range of what the parts cited, and a line the lecture does not have.
    let reply = LlmReply::answer(|body| {
        let user = user_message(body);
        let ids = line_ids(&user);
        let (first, last) = (ids.iter().min().copied().unwrap(), ids.iter().max().copied().unwrap());
        if user.contains("Merge them") {
            return json!({"abstract": "Лекция целиком.", "keyTopics": [
                {"topic": "всё", "segmentIds": [format!("s{first}"), format!("s{last}")]},
                {"topic": "выдумано", "segmentIds": ["s999"]}]})
            .to_string();
        }
        json!({"abstract": format!("Строки s{first}–s{last}."), "keyTopics": [
            {"topic": format!("с s{first}"), "segmentIds": [format!("s{first}"), format!("s{last}")]},
            {"topic": "чужая строка", "segmentIds": [format!("s{}", last + 1)]}], "actionItems": [], "qa": []})
        .to_string()
    });
    let double = LlmDouble::start(vec![reply]).await.unwrap();
    let long: Vec<Segment> =
        (0..60).map(|i| seg(&i.to_string(), i * 10_000, &"Фотосинтез и свет. ".repeat(4))).collect();
    let summary = summariser(&double)
        .with_limits(2_000, Duration::from_millis(10))
        .summarise(&long, &extras(), "ru")
        .await
        .unwrap();
    let requests = double.requests();
    assert!(requests.len() >= 3, "several parts and one merge: {}", requests.len());
    let parts = requests.len() - 1;
    let mut next_line = 1;
    for i in 0..parts {
        let user = double.user_message(i);
        assert!(user.contains(&format!("part {} of {parts}", i + 1)), "{user}");
        assert!(user.len() < 2_600, "each part stays within the limit");
        let ids = line_ids(&user);
        assert_eq!(ids.first(), Some(&next_line), "parts are consecutive, every line in one");
        next_line = ids.last().unwrap() + 1;
    }
    assert_eq!(next_line, 61);
    let merge = double.user_message(parts);
    assert!(merge.contains("Merge them") && merge.contains("Строки s1–s"), "{merge}");
    assert!(merge.contains(r#"{"segmentIds":["s1","s"#), "parts keep their citations as line ids: {merge}");
    assert!(!merge.contains("чужая строка"), "a part citing a line it was not shown loses that item: {merge}");
    assert_eq!(summary.abstract_text, "Лекция целиком.");
    let topics: Vec<(&str, Citation)> = summary.key_topics.iter().map(|t| (t.topic.as_str(), t.cite)).collect();
    assert_eq!(topics, [("всё", Citation::new(0, 593_000))]);
}

/// A realistic answer's size (a five-sentence abstract, eight topics, three action items and three
/// questions), citing lines `first` to `last`.
fn full_answer(first: usize, last: usize) -> String {
    let cite = |k: usize| {
        let line = first + (last - first) * k / 8;
        json!([format!("s{line}"), format!("s{}", (line + 2).min(last))])
    };
    let sentence = "Лектор объясняет, как растения превращают солнечный свет в химическую энергию и запасают её.";
    let abstract_text = [sentence; 5].join(" ");
    json!({
        "abstract": abstract_text,
        "keyTopics": (0..8).map(|k| json!({"topic": format!("фотосинтез, тема {k}"), "segmentIds": cite(k)})).collect::<Vec<_>>(),
        "actionItems": (0..3).map(|k| json!({"text": format!("Прочитать главу {k} и решить задачи к ней"), "segmentIds": cite(k)})).collect::<Vec<_>>(),
        "qa": (0..3).map(|k| json!({"question": format!("Почему хлорофилл зелёный, вопрос {k}?"), "answer": sentence, "segmentIds": cite(k)})).collect::<Vec<_>>(),
    })
    .to_string()
}

#[tokio::test]
async fn a_three_hour_lecture_is_summarised_within_an_8k_context() {
    confctl::tls_provider();
    let reply = LlmReply::answer(|body| {
        let ids = line_ids(&user_message(body));
        full_answer(ids.iter().min().copied().unwrap(), ids.iter().max().copied().unwrap())
    });
    let double = LlmDouble::start(vec![reply]).await.unwrap();
    double.limit_context(8_192);
    // 2,700 utterances of four seconds: three hours, some 30,000 words of Russian.
    let text = "Растения превращают свет в химическую энергию, и сегодня мы разберём, как именно это происходит.";
    let lecture: Vec<Segment> = (0..2_700).map(|i| seg(&i.to_string(), i * 4_000, text)).collect();
    let summary = summariser(&double).summarise(&lecture, &extras(), "ru").await.unwrap();

    let requests = double.requests();
    let merges = requests.iter().filter(|r| user_message(r).contains("Merge them")).count();
    let largest = requests.iter().map(estimated_tokens).max().unwrap();
    assert!(largest <= 8_192, "every request fits the context: {largest} tokens");
    assert!(merges >= 2, "the parts' summaries are merged in rounds: {merges} merges of {}", requests.len());
    assert_eq!(summary.key_topics.len(), 8);
    let all = [
        summary.key_topics.iter().map(|t| t.cite).collect::<Vec<_>>(),
        summary.action_items.iter().map(|a| a.cite).collect(),
        summary.qa.iter().map(|q| q.cite).collect(),
    ]
    .concat();
    assert!(all.iter().all(|c| c.is_in(&lecture) && c.end_ms <= 2_699 * 4_000 + 3_000), "{all:?}");
}

#[tokio::test]
async fn overload_and_malformed_answers_are_retried_and_failures_are_readable() {
    confctl::tls_provider();
    // 503, a body that is not JSON, an answer without the summary: then it works.
    let double = LlmDouble::start(vec![
        LlmReply::Error(503, "The server is overloaded".into()),
        LlmReply::Garbage,
        LlmReply::Content(ANSWER.to_owned()),
    ])
    .await
    .unwrap();
    let ok = summariser(&double).summarise(&lecture(), &extras(), "ru").await;
    assert!(ok.is_ok(), "{ok:?}");
    assert_eq!(double.requests().len(), 3);

    let double = LlmDouble::start(vec![LlmReply::Content("Извините, я не могу.".into())]).await.unwrap();
    let err = summariser(&double).summarise(&lecture(), &extras(), "ru").await.unwrap_err();
    assert!(err.to_string().contains("not the summary JSON") && err.to_string().contains("3 attempts"), "{err}");

    let double = LlmDouble::start(vec![LlmReply::Error(429, "You exceeded your current quota".into())]).await.unwrap();
    let err = summariser(&double).summarise(&lecture(), &extras(), "ru").await.unwrap_err();
    assert!(err.to_string().contains("quota"), "{err}");
    assert_eq!(double.requests().len(), 3, "quota errors are retried with backoff");

    let double = LlmDouble::start(vec![LlmReply::Content(ANSWER.to_owned())]).await.unwrap();
    double.require_key("another-key");
    let err = summariser(&double).summarise(&lecture(), &extras(), "ru").await.unwrap_err();
    assert!(err.to_string().contains("refused the API key"), "{err}");
    assert_eq!(double.requests().len(), 1, "a wrong key is not retried");

    // A server without JSON mode: asked again without `response_format`.
    let double = LlmDouble::start(vec![LlmReply::Content(ANSWER.to_owned())]).await.unwrap();
    double.refuse_response_format();
    summariser(&double).summarise(&lecture(), &extras(), "ru").await.unwrap();
    let requests = double.requests();
    assert_eq!(requests.len(), 2);
    assert!(requests[1].get("response_format").is_none());

    // As the artifact records it.
    let double = LlmDouble::start(vec![LlmReply::Error(500, "boom".into())]).await.unwrap();
    let outcome = Summariser::Llm(summariser(&double)).summarise(&lecture(), &extras(), "ru").await;
    assert!(outcome.summary.is_none());
    assert_eq!((outcome.provider.as_str(), outcome.model.as_str()), ("127.0.0.1", "llama3.1:8b"));
    assert!(outcome.error.unwrap().starts_with("the summary could not be written: "));
}

/// A lecture that has captions and then ends; returns its host, its id and the artifact the worker wrote.
async fn lecture_with_captions(w: &WithLiveKit) -> (Browser, String, Value) {
    let host = w.t.client();
    host.register("ada@uni.edu", "Ada").await;
    let (_, room) = host.post("/api/rooms", json!({"name": "Биология", "language": "ru", "lobbyEnabled": false})).await;
    let room_id = room["id"].as_str().unwrap().to_owned();
    let id = room["lectureId"].as_str().unwrap().to_owned();
    let lk_room = w.lk.add_room(room["livekitRoomName"].as_str().unwrap());
    w.lk.send_webhook(&w.webhook_url(), events::room_started(&lk_room)).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while w.lk.rtc_sessions().is_empty() {
        assert!(Instant::now() < deadline, "the assistant never joined");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Captions as the assistant posted them during the lecture.
    let (_, token) =
        confctl::accounts::agent_tokens::create(&w.t.app, &confctl::audit::Actor::cli(), "c").await.unwrap();
    let http = reqwest::Client::new();
    for s in lecture() {
        let caption = json!({"segmentId": s.segment_id, "speakerIdentity": "h_ada", "speakerName": "Ada", "text": s.text,
            "final": true, "startMs": s.start_ms, "endMs": s.end_ms, "language": "ru", "provider": "whisper"});
        let r = http
            .post(format!("{}/api/agent/lectures/{id}/captions", w.t.base))
            .bearer_auth(&token)
            .json(&caption)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    let (status, ended) = host.post(&format!("/api/rooms/{room_id}/end"), json!({})).await;
    assert_eq!((status, ended["endedLectureId"].as_str()), (200, Some(id.as_str())), "{ended}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .get(format!("{}/api/agent/lectures/{id}/artifact", w.t.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let (status, body) = support::read(r).await;
        // The lecture page says "being written" (pending) until the assistant's artifact arrives.
        if status == 200 && body["status"] != "pending" {
            return (host, id, body);
        }
        assert!(Instant::now() < deadline, "no artifact: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The items of a summary as JSON: (text, startMs, endMs).
fn cited(summary: &Value, list: &str, text: &str) -> Vec<(String, i64, i64)> {
    summary[list]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| (i[text].as_str().unwrap().to_owned(), i["startMs"].as_i64().unwrap(), i["endMs"].as_i64().unwrap()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_stores_the_models_summary_without_invented_items_and_a_failed_resummary_keeps_it() {
    let llm = LlmDouble::start(vec![LlmReply::Content(ANSWER_WITH_INVENTIONS.to_owned())]).await.unwrap();
    // The server's own configuration (what regenerating uses) has a broken model.
    let broken = LlmDouble::start(vec![LlmReply::Error(401, "Incorrect API key provided.".into())]).await.unwrap();
    let w = WithLiveKit::spawn(Db::Sqlite, &[("agent.llm_url", broken.url().as_str())]).await;
    let agent = RunningAgent::with_llm(&w.t, &llm.url()).await;
    let (host, id, artifact) = lecture_with_captions(&w).await;
    assert_eq!(artifact["status"], "complete", "{artifact}");
    assert_eq!((artifact["summaryKind"].as_str(), artifact["model"].as_str()), (Some("llm"), Some("gpt-4o-mini")));
    assert!(llm.requests()[0]["messages"][0]["content"].as_str().unwrap().contains("Russian"));
    assert!(llm.user_message(0).contains("[s4 00:00:12] Ada: Хлорофилл отражает зелёный свет."));
    // Only what the transcript backs is stored, and shown on the lecture page.
    let summary = &artifact["summary"];
    let topics = vec![("фотосинтез".to_owned(), 1_000, 8_000), ("хлорофилл".to_owned(), 12_000, 15_000)];
    assert_eq!(cited(summary, "keyTopics", "topic"), topics);
    assert_eq!(cited(summary, "actionItems", "text"), [("Прочитать четвёртую главу".to_owned(), 16_000, 19_000)]);
    assert_eq!(cited(summary, "qa", "question"), [("Почему листья зелёные?".to_owned(), 9_000, 15_000)]);
    let (status, page) = host.get(&format!("/api/lectures/{id}")).await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(cited(&page["summary"]["summary"], "keyTopics", "topic"), topics);
    assert_eq!(page["summary"]["summary"]["qa"].as_array().unwrap().len(), 1);

    let err = confctl::artifacts::resummarize(&w.t.app, &id).await.unwrap_err();
    assert!(err.code() == "summary_failed" && err.to_string().contains("kept"), "{err}");
    let kept = confctl::artifacts::get(&w.t.app, &id).await.unwrap().unwrap();
    assert_eq!((kept.summary_kind.as_deref(), kept.model.as_deref()), (Some("llm"), Some("gpt-4o-mini")));
    // The reason is kept beside the summary, for the lecture page to show the host.
    let reason = kept.error.unwrap();
    assert!(reason.contains("refused the API key") && reason.contains("kept"), "{reason}");
    assert_eq!(kept.status, confctl::artifacts::ArtifactStatus::Complete);
    assert_eq!(kept.summary.unwrap()["keyTopics"].as_array().unwrap().len(), 2, "the cited summary is the one kept");
    agent.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_model_fails_the_artifact_says_why_and_keeps_the_transcript() {
    let llm = LlmDouble::start(vec![LlmReply::Error(429, "You exceeded your current quota".into())]).await.unwrap();
    let w = WithLiveKit::spawn(Db::Sqlite, &[]).await;
    let agent = RunningAgent::with_llm(&w.t, &llm.url()).await;
    let (_, id, artifact) = lecture_with_captions(&w).await;
    assert_eq!(artifact["status"], "failed", "{artifact}");
    assert!(artifact["summary"].is_null());
    let error = artifact["error"].as_str().unwrap();
    assert!(error.contains("quota") && error.contains("attempts"), "{error}");
    let text = artifact["transcriptText"].as_str().unwrap();
    assert!(text.contains("Хлорофилл отражает зелёный свет."), "{text}");
    assert!(artifact["transcriptVtt"].as_str().unwrap().contains("<v Ada>Почему листья зелёные?"));
    assert_eq!(llm.requests().len(), 3);

    // Summarised again (no model configured on the server: the extractive summariser), it replaces the
    // failed artifact, citing the transcript as well.
    let again = confctl::artifacts::resummarize(&w.t.app, &id).await.unwrap();
    assert_eq!((again.summary_kind.as_deref(), again.error.as_deref()), (Some("extractive"), None));
    let summary = again.summary.unwrap();
    assert_eq!(summary["qa"][0]["answer"], "Хлорофилл отражает зелёный свет.");
    assert_eq!(
        cited(&summary, "qa", "question"),
        [("Почему листья зелёные?".to_owned(), 9_000, 15_000)],
        "from the question to the end of its answer"
    );
    assert_eq!(
        cited(&summary, "actionItems", "text"),
        [("К следующему занятию прочитайте четвёртую главу.".to_owned(), 16_000, 19_000)]
    );
    assert!(again.transcript_text.unwrap().contains("Почему листья зелёные?"));
    agent.stop().await;
}
