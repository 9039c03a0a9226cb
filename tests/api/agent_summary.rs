//! Lecture summaries by an OpenAI-compatible chat model, against the chat-completions double: the request
//! (model, key, JSON mode, the lecture's language, transcript lines with their times), long transcripts in
//! parts merged into one, retries on overload and on malformed answers, servers without JSON mode, readable
//! failures; and through the worker, the artifact confctl stores when the model works and when it does not
//! (the transcript is kept either way).

use std::sync::Arc;
use std::time::{Duration, Instant};

use confctl::agent::Agent;
use confctl::agent::api::AgentApi;
use confctl::agent::summary::llm::LlmSummariser;
use confctl::agent::summary::{Extras, Summariser};
use confctl::agent::transcript::Segment;
use confctl::config::{self, Sources};
use confctl::secret::Secret;
use confctl_doubles::webhook::events;
use confctl_doubles::{LlmDouble, LlmReply};
use serde_json::{Value, json};

use crate::support::{self, Db, WithLiveKit};

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
  "keyTopics": [{"topic": "фотосинтез", "startMs": 1000}, {"topic": "хлорофилл", "startMs": 12500}],
  "actionItems": [{"text": "Прочитать четвёртую главу", "startMs": 16000}],
  "qa": [{"question": "Почему листья зелёные?", "answer": "Хлорофилл отражает зелёный свет.", "startMs": 9000}]}"#;

fn summariser(double: &LlmDouble) -> LlmSummariser {
    LlmSummariser::new(&double.url().parse().unwrap(), "llama3.1:8b".into(), Some(Secret::new("sk-test")))
        .unwrap()
        .with_limits(24_000, Duration::from_millis(10))
}

fn extras() -> Extras {
    Extras { title: "Биология".into(), speakers: vec!["Ada".into(), "Борис".into()] }
}

#[tokio::test]
async fn the_model_gets_the_transcript_with_times_and_answers_in_the_lectures_language() {
    confctl::tls_provider();
    let double = LlmDouble::start(vec![LlmReply::Content(format!("```json\n{ANSWER}\n```"))]).await.unwrap();
    double.require_key("sk-test");
    let summary = summariser(&double).summarise(&lecture(), &extras(), "ru").await.unwrap();
    assert_eq!(summary.kind, "llm");
    assert_eq!(summary.language, "ru");
    assert_eq!(summary.abstract_text, "Лекция о фотосинтезе.");
    assert_eq!(summary.qa[0].cite.start_ms, 9_000);
    assert_eq!(summary.key_topics[1].cite.start_ms, 12_000, "pointers snap to the start of a transcript line");

    let requests = double.requests();
    assert_eq!(requests.len(), 1);
    let r = &requests[0];
    assert_eq!(r["model"], "llama3.1:8b");
    assert_eq!(r["response_format"]["type"], "json_object");
    let system = r["messages"][0]["content"].as_str().unwrap();
    assert!(system.contains("Russian") && system.contains("startMs"), "{system}");
    let user = double.user_message(0);
    assert!(user.contains("[9000] Ada: Почему листья зелёные?"), "{user}");
    assert!(user.contains("Speakers: Ada, Борис"), "{user}");
    assert!(user.contains("Лекция: ") || user.contains("Lecture: Биология"), "{user}");
}

#[tokio::test]
async fn long_transcripts_are_summarised_in_parts_and_merged() {
    confctl::tls_provider();
    let part = |n: u32| {
        LlmReply::Content(
            json!({"abstract": format!("Part {n}."), "keyTopics": [{"topic": format!("t{n}"), "startMs": 1000}],
                   "actionItems": [], "qa": []})
            .to_string(),
        )
    };
    let merged = LlmReply::Content(ANSWER.to_owned());
    let double = LlmDouble::start(vec![part(1), part(2), part(3), merged]).await.unwrap();
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
    for i in 0..parts {
        let user = double.user_message(i);
        assert!(user.contains(&format!("part {} of {parts}", i + 1)), "{user}");
        assert!(user.len() < 2_600, "each part stays within the limit");
    }
    let merge = double.user_message(parts);
    assert!(merge.contains("Merge them") && merge.contains("Part 1.") && merge.contains("\"t2\""), "{merge}");
    assert_eq!(summary.abstract_text, "Лекция о фотосинтезе.");
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

/// A worker with the configured LLM (and whatever speech-to-text; no audio is played here).
async fn start_agent(w: &WithLiveKit, llm: &LlmDouble) -> tokio::sync::oneshot::Sender<()> {
    let (_, token) =
        confctl::accounts::agent_tokens::create(&w.t.app, &confctl::audit::Actor::cli(), "t").await.unwrap();
    let env = vec![
        ("CONFCTL_AGENT__LLM_URL".to_owned(), llm.url()),
        ("CONFCTL_AGENT__LLM_MODEL".to_owned(), "gpt-4o-mini".to_owned()),
        ("CONFCTL_AGENT__WEBRTC_UDP_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
    ];
    let config = config::load(&Sources { env, ..Sources::default() }).unwrap();
    let api = AgentApi::new(&w.t.base.parse().unwrap(), Secret::new(token)).unwrap();
    let fast = LlmSummariser::new(&llm.url().parse().unwrap(), "gpt-4o-mini".into(), None)
        .unwrap()
        .with_limits(24_000, Duration::from_millis(10));
    let agent = Agent::new(&config.agent, api).unwrap().with_summariser(Summariser::Llm(fast));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(confctl::agent::worker::run(Arc::new(agent), async move {
        let _ = stopped.await;
    }));
    stop
}

/// A lecture that has captions and then ends; returns the lecture's id and the artifact the worker wrote.
async fn lecture_with_captions(w: &WithLiveKit) -> (String, Value) {
    let host = w.t.client();
    host.register("ada@uni.edu", "Ada").await;
    let (_, room) = host.post("/api/rooms", json!({"name": "Биология", "language": "ru", "lobbyEnabled": false})).await;
    let id = room["id"].as_str().unwrap().to_owned();
    let lecture_id = room["lectureId"].as_str().unwrap().to_owned();
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
            .post(format!("{}/api/agent/lectures/{lecture_id}/captions", w.t.base))
            .bearer_auth(&token)
            .json(&caption)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 202);
    }
    host.post(&format!("/api/rooms/{id}/end"), json!({})).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = http
            .get(format!("{}/api/agent/lectures/{lecture_id}/artifact", w.t.base))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        let (status, body) = support::read(r).await;
        // The lecture page says "being written" (pending) until the assistant's artifact arrives.
        if status == 200 && body["status"] != "pending" {
            return (lecture_id, body);
        }
        assert!(Instant::now() < deadline, "no artifact: {status} {body}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_stores_the_models_summary_and_a_failed_resummary_keeps_it() {
    let llm = LlmDouble::start(vec![LlmReply::Content(ANSWER.to_owned())]).await.unwrap();
    // The server's own configuration (what `confctl admin lecture resummarize` uses) has a broken model.
    let broken = LlmDouble::start(vec![LlmReply::Error(401, "Incorrect API key provided.".into())]).await.unwrap();
    let w = WithLiveKit::spawn(Db::Sqlite, &[("agent.llm_url", broken.url().as_str())]).await;
    let stop = start_agent(&w, &llm).await;
    let (id, artifact) = lecture_with_captions(&w).await;
    assert_eq!(artifact["status"], "complete", "{artifact}");
    assert_eq!((artifact["summaryKind"].as_str(), artifact["model"].as_str()), (Some("llm"), Some("gpt-4o-mini")));
    assert_eq!(artifact["summary"]["qa"][0]["question"], "Почему листья зелёные?");
    assert!(llm.requests()[0]["messages"][0]["content"].as_str().unwrap().contains("Russian"));
    assert!(llm.user_message(0).contains("[12000] Ada: Хлорофилл отражает зелёный свет."));

    let err = confctl::artifacts::resummarize(&w.t.app, &id).await.unwrap_err();
    assert!(err.code() == "summary_failed" && err.to_string().contains("kept"), "{err}");
    let kept = confctl::artifacts::get(&w.t.app, &id).await.unwrap().unwrap();
    assert_eq!((kept.summary_kind.as_deref(), kept.model.as_deref()), (Some("llm"), Some("gpt-4o-mini")));
    // The reason is kept beside the summary, for the lecture page to show the host.
    let reason = kept.error.unwrap();
    assert!(reason.contains("refused the API key") && reason.contains("kept"), "{reason}");
    assert_eq!(kept.status, confctl::artifacts::ArtifactStatus::Complete);
    let _ = stop.send(());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_model_fails_the_artifact_says_why_and_keeps_the_transcript() {
    let llm = LlmDouble::start(vec![LlmReply::Error(429, "You exceeded your current quota".into())]).await.unwrap();
    let w = WithLiveKit::spawn(Db::Sqlite, &[]).await;
    let stop = start_agent(&w, &llm).await;
    let (id, artifact) = lecture_with_captions(&w).await;
    assert_eq!(artifact["status"], "failed", "{artifact}");
    assert!(artifact["summary"].is_null());
    let error = artifact["error"].as_str().unwrap();
    assert!(error.contains("quota") && error.contains("attempts"), "{error}");
    let text = artifact["transcriptText"].as_str().unwrap();
    assert!(text.contains("Хлорофилл отражает зелёный свет."), "{text}");
    assert!(artifact["transcriptVtt"].as_str().unwrap().contains("<v Ada>Почему листья зелёные?"));
    assert_eq!(llm.requests().len(), 3);

    // Summarised again (no model configured on the server: the extractive summariser), it replaces the
    // failed artifact.
    let again = confctl::artifacts::resummarize(&w.t.app, &id).await.unwrap();
    assert_eq!((again.summary_kind.as_deref(), again.error.as_deref()), (Some("extractive"), None));
    let summary = again.summary.unwrap();
    assert_eq!(summary["qa"][0]["answer"], "Хлорофилл отражает зелёный свет.");
    assert!(again.transcript_text.unwrap().contains("Почему листья зелёные?"));
    let _ = stop.send(());
}
