//! The assistant's speech-to-text providers: the OpenAI-compatible one against a real Whisper server
//! (faster-whisper with Whisper base, started by scripts/stt-server) and against a double that fails on
//! purpose; Deepgram's streaming one against the Deepgram double (interim and final results, keep-alive
//! through silence, reconnects, refused handshakes).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use confctl::agent::stt::deepgram::DeepgramStt;
use confctl::agent::stt::openai::OpenAiStt;
use confctl::agent::stt::{AudioEvent, SpeechToText, Transcribed};
use confctl::secret::Secret;
use confctl_doubles::{DeepgramDouble, DeepgramDoubleConfig};
use tokio::sync::mpsc;

use crate::support::{self, Service, speech};

const RATE: u32 = 16_000;
/// Some Unix time in ms, far from zero so mistakes in time arithmetic show.
const T0: i64 = 1_800_000_000_000;

/// 20 ms frames of `samples`, the first at `at_ms`.
fn frames(samples: &[i16], at_ms: i64) -> Vec<AudioEvent> {
    samples
        .chunks(320)
        .enumerate()
        .map(|(i, c)| AudioEvent::Speech { samples: c.to_vec(), at_ms: at_ms + 20 * i as i64 })
        .collect()
}

/// Runs `stt` on a channel the test feeds; results are collected as they arrive.
struct Run {
    audio: Option<mpsc::Sender<AudioEvent>>,
    results: Arc<Mutex<Vec<(Instant, Transcribed)>>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
    collector: tokio::task::JoinHandle<()>,
}

impl Run {
    fn start(stt: Arc<dyn SpeechToText>, language: &str) -> Self {
        let (audio_tx, audio_rx) = mpsc::channel(10_000);
        let (out_tx, mut out_rx) = mpsc::channel(100);
        let language = language.to_owned();
        let task = tokio::spawn(async move { stt.transcribe(&language, audio_rx, out_tx).await });
        let results = Arc::new(Mutex::new(Vec::new()));
        let collector = {
            let results = results.clone();
            tokio::spawn(async move {
                while let Some(t) = out_rx.recv().await {
                    results.lock().unwrap().push((Instant::now(), t));
                }
            })
        };
        Self { audio: Some(audio_tx), results, task, collector }
    }

    async fn send(&self, events: Vec<AudioEvent>) {
        for e in events {
            self.audio.as_ref().unwrap().send(e).await.unwrap();
        }
    }

    /// Sends events paced like real time (one 20 ms frame per 20 ms).
    async fn send_paced(&self, events: Vec<AudioEvent>) {
        let mut tick = tokio::time::interval(Duration::from_millis(20));
        for e in events {
            tick.tick().await;
            self.audio.as_ref().unwrap().send(e).await.unwrap();
        }
    }

    fn results(&self) -> Vec<Transcribed> {
        self.results.lock().unwrap().iter().map(|(_, t)| t.clone()).collect()
    }

    async fn wait_for(&self, what: &str, done: impl Fn(&[Transcribed]) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !done(&self.results()) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}; got {:?}", self.results());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Closes the audio and waits for the provider to finish; returns every result.
    async fn finish(mut self) -> Vec<Transcribed> {
        self.audio.take();
        tokio::time::timeout(Duration::from_secs(60), self.task).await.expect("transcribe returned").unwrap().unwrap();
        self.collector.await.unwrap();
        Arc::try_unwrap(self.results).unwrap().into_inner().unwrap().into_iter().map(|(_, t)| t).collect()
    }
}

fn finals(results: &[Transcribed]) -> Vec<Transcribed> {
    results.iter().filter(|t| t.is_final).cloned().collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whisper_transcribes_each_utterance_once_with_its_times() {
    let Some(_turn) = support::media_turn_with(&[Service::Speech, Service::Whisper]).await else { return };
    confctl::tls_provider();
    let url = speech::stt_url();
    let stt = OpenAiStt::new(url.parse().unwrap(), "whisper-1".into(), None).unwrap();
    let run = Run::start(Arc::new(stt), "en");

    let first = speech::speak("Plants convert sunlight into chemical energy.", "en-us", RATE);
    let second = speech::speak("Are there any questions about chlorophyll?", "en-us", RATE);
    run.send(frames(&first, T0)).await;
    let first_end = Instant::now();
    run.send(vec![AudioEvent::UtteranceEnd]).await;
    run.send(frames(&second, T0 + 20_000)).await;
    run.send(vec![AudioEvent::UtteranceEnd]).await;
    run.wait_for("the first caption", |r| !r.is_empty()).await;
    let latency = run.results.lock().unwrap()[0].0 - first_end;
    println!("whisper: first utterance ({} ms of audio) transcribed {latency:?} after its end", first.len() / 16);

    let results = run.finish().await;
    assert_eq!(results.len(), 2, "{results:?}");
    assert!(results.iter().all(|r| r.is_final));
    assert_ne!(results[0].segment_id, results[1].segment_id);
    speech::assert_words(&results[0].text, &["plants", "sunlight", "chemical", "energy"]);
    speech::assert_words(&results[1].text, &["questions"]);
    assert!(results[1].text.to_lowercase().contains("chlorophyl"), "{}", results[1].text);
    assert_eq!(results[0].start_ms, T0);
    assert_eq!(results[0].end_ms, T0 + (first.len() as i64) * 1000 / 16_000);
    assert_eq!(results[1].start_ms, T0 + 20_000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whisper_speaks_russian_when_the_room_does() {
    let Some(_turn) = support::media_turn_with(&[Service::Speech, Service::Whisper]).await else { return };
    confctl::tls_provider();
    let stt = OpenAiStt::new(speech::stt_url().parse().unwrap(), "whisper-1".into(), None).unwrap();
    let run = Run::start(Arc::new(stt), "ru");
    let audio = speech::speak("Сегодня мы изучаем фотосинтез.", "ru", RATE);
    run.send(frames(&audio, T0)).await;
    let results = run.finish().await;
    assert_eq!(results.len(), 1, "{results:?}");
    // Whisper base understands espeak's Russian voice poorly ("семонтно-мезучаем форта синтеса"), so this
    // checks what confctl controls: the room's language reaches the model, which then writes Russian
    // (without it, the same audio comes back transliterated into Latin letters).
    let text = results[0].text.to_lowercase();
    let letters: Vec<char> = text.chars().filter(|c| c.is_alphabetic()).collect();
    let cyrillic = letters.iter().filter(|c| ('а'..='я').contains(*c) || **c == 'ё').count();
    assert!(cyrillic * 10 >= letters.len() * 9, "Russian text expected: {text}");
}

/// What the OpenAI-compatible double saw.
#[derive(Default)]
struct SeenRequests {
    fields: Vec<Vec<(String, String)>>,
    authorization: Vec<Option<String>>,
}

/// An OpenAI-compatible transcription double: answers each request with the next scripted status (the
/// last one repeats); 200 answers `{"text": …}`.
async fn openai_double(script: Vec<u16>) -> (String, Arc<Mutex<SeenRequests>>) {
    type Shared = (Arc<Mutex<SeenRequests>>, Arc<Mutex<Vec<u16>>>);
    async fn handle(State((seen, script)): State<Shared>, headers: HeaderMap, body: Bytes) -> (StatusCode, String) {
        let fields = multipart_fields(&headers, &body);
        let mut seen = seen.lock().unwrap();
        seen.fields.push(fields);
        seen.authorization.push(headers.get("authorization").map(|v| v.to_str().unwrap().to_owned()));
        let mut script = script.lock().unwrap();
        let status = if script.len() > 1 { script.remove(0) } else { script[0] };
        match status {
            200 => (StatusCode::OK, r#"{"text":" hello from the double "}"#.to_owned()),
            s => (StatusCode::from_u16(s).unwrap(), r#"{"error":{"message":"scripted failure"}}"#.to_owned()),
        }
    }
    let seen = Arc::new(Mutex::new(SeenRequests::default()));
    let app = axum::Router::new()
        .route("/v1/audio/transcriptions", axum::routing::post(handle))
        .with_state((seen.clone(), Arc::new(Mutex::new(script))));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, seen)
}

#[tokio::test]
async fn whisper_retries_overload_and_sends_the_openai_request_shape() {
    confctl::tls_provider();
    let (url, seen) = openai_double(vec![503, 429, 200]).await;
    let stt = OpenAiStt::new(url.parse().unwrap(), "whisper-large-v3".into(), Some(Secret::new("sk-test")))
        .unwrap()
        .with_retry_base(Duration::from_millis(10));
    let run = Run::start(Arc::new(stt), "pt-BR");
    run.send(frames(&vec![1000; 16_000], T0)).await;
    let results = run.finish().await;
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].text, "hello from the double");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.fields.len(), 3, "two failures retried, then success");
    assert_eq!(seen.authorization[2].as_deref(), Some("Bearer sk-test"));
    let fields: std::collections::HashMap<_, _> = seen.fields[2].iter().cloned().collect();
    assert_eq!(fields["file"], "utterance.wav:RIFF");
    assert_eq!(fields["model"], "whisper-large-v3");
    assert_eq!(fields["language"], "pt", "Whisper takes the primary language subtag");
    assert_eq!(fields["response_format"], "json");
}

#[tokio::test]
async fn whisper_does_not_retry_a_rejected_request_and_skips_clicks() {
    confctl::tls_provider();
    let (url, seen) = openai_double(vec![401]).await;
    let stt = OpenAiStt::new(url.parse().unwrap(), "whisper-1".into(), None)
        .unwrap()
        .with_retry_base(Duration::from_millis(10));
    let run = Run::start(Arc::new(stt), "en");
    run.send(frames(&vec![1000; 1_600], T0)).await; // 100 ms: a click, never sent
    run.send(vec![AudioEvent::UtteranceEnd]).await;
    run.send(frames(&vec![1000; 16_000], T0 + 5_000)).await;
    let results = run.finish().await;
    assert!(results.is_empty(), "{results:?}");
    assert_eq!(seen.lock().unwrap().fields.len(), 1, "a 401 is not retried");
}

/// (name, value) of every part of a multipart/form-data body; a file part's value is `filename:` followed by
/// its first four bytes.
fn multipart_fields(headers: &HeaderMap, body: &[u8]) -> Vec<(String, String)> {
    let ctype = headers["content-type"].to_str().unwrap();
    let boundary = format!("--{}", ctype.split("boundary=").nth(1).unwrap().trim_matches('"'));
    let text = String::from_utf8_lossy(body);
    let mut out = Vec::new();
    for part in text.split(&boundary).skip(1) {
        let Some((head, value)) = part.split_once("\r\n\r\n") else { continue };
        let name = head.split("name=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or_default();
        let value = value.strip_suffix("\r\n").unwrap_or(value);
        match head.split("filename=\"").nth(1).and_then(|r| r.split('"').next()) {
            Some(file) => out.push((name.to_owned(), format!("{file}:{}", value.chars().take(4).collect::<String>()))),
            None => out.push((name.to_owned(), value.to_owned())),
        }
    }
    out
}

fn deepgram(double: &DeepgramDouble) -> DeepgramStt {
    DeepgramStt::new(double.url().parse().unwrap(), "nova-2".into(), Some(Secret::new("dg-key")))
        .with_reconnect_base(Duration::from_millis(50))
        .with_keepalive_every(Duration::from_millis(300))
}

fn double_config() -> DeepgramDoubleConfig {
    let mut config = DeepgramDoubleConfig::new("dg-key");
    config.vocabulary = ["plants", "convert", "sunlight", "into", "chemical", "energy"].map(String::from).to_vec();
    config.idle_timeout = Duration::from_secs(1);
    config
}

#[tokio::test]
async fn deepgram_interim_results_share_the_final_segment_id_and_times_follow_the_speaker() {
    let double = DeepgramDouble::start(double_config()).await.unwrap();
    let run = Run::start(Arc::new(deepgram(&double)), "en");

    // "plants convert sunlight", 200 ms per word with 100 ms gaps, paced in real time.
    run.send_paced(frames(&DeepgramDouble::speak(&[1, 2, 3], 200, 100), T0)).await;
    run.send(vec![AudioEvent::UtteranceEnd]).await;
    run.wait_for("the first final", |r| r.iter().any(|t| t.is_final)).await;
    // Silence longer than the double's 1 s timeout: keep-alives hold the stream open.
    tokio::time::sleep(Duration::from_millis(1_800)).await;
    // The next utterance a minute later (by the speaker's clock).
    run.send(frames(&DeepgramDouble::speak(&[5, 6], 200, 100), T0 + 60_000)).await;
    run.send(vec![AudioEvent::UtteranceEnd]).await;
    run.wait_for("the second final", |r| r.iter().filter(|t| t.is_final).count() == 2).await;
    let results = run.finish().await;

    let first = &finals(&results)[0];
    assert_eq!(first.text, "plants convert sunlight");
    assert_eq!(first.start_ms, T0);
    assert!((T0 + 800..=T0 + 900).contains(&first.end_ms), "{}", first.end_ms);
    let interims: Vec<&Transcribed> = results.iter().take_while(|t| !t.is_final).collect();
    assert!(!interims.is_empty(), "interim results while speaking: {results:?}");
    assert!(interims.iter().all(|t| t.segment_id == first.segment_id), "{results:?}");
    assert!(interims.iter().all(|t| first.text.starts_with(&t.text)), "{interims:?}");

    let second = &finals(&results)[1];
    assert_eq!(second.text, "chemical energy");
    assert_ne!(second.segment_id, first.segment_id);
    assert_eq!(second.start_ms, T0 + 60_000, "the pause is not counted as stream time");

    let connections = double.connections();
    assert_eq!(connections.len(), 1, "one stream survived the silence: {connections:?}");
    let c = &connections[0];
    assert!(c.keepalives >= 2, "{c:?}");
    assert_eq!(c.finalizes, 2);
    assert!(c.close_stream, "CloseStream at the end");
    assert_eq!(c.authorization.as_deref(), Some("Token dg-key"));
    assert_eq!(c.query["language"], "en");
    assert_eq!(c.query["interim_results"], "true");
    assert_eq!(c.audio_bytes, 2 * (900 + 600) * 16, "silence is never sent");
}

#[tokio::test]
async fn deepgram_reconnects_and_resends_what_was_not_final_yet() {
    let double = DeepgramDouble::start(double_config()).await.unwrap();
    let run = Run::start(Arc::new(deepgram(&double)), "en");
    run.send_paced(frames(&DeepgramDouble::speak(&[1, 2, 3], 200, 100), T0)).await;
    run.wait_for("an interim result", |r| !r.is_empty()).await;
    double.drop_connections();
    run.send_paced(frames(&DeepgramDouble::speak(&[4, 5, 6], 200, 100), T0 + 900)).await;
    run.send(vec![AudioEvent::UtteranceEnd]).await;
    run.wait_for("a final", |r| r.iter().any(|t| t.is_final)).await;
    let results = run.finish().await;
    let text = finals(&results).iter().map(|t| t.text.as_str()).collect::<Vec<_>>().join(" ");
    assert_eq!(text, "plants convert sunlight into chemical energy", "nothing lost, nothing twice: {results:?}");
    assert_eq!(finals(&results)[0].start_ms, T0, "resent audio keeps its own time");
    let connections = double.connections();
    assert_eq!(connections.len(), 2, "{connections:?}");
    assert_eq!(connections[0].ended.as_deref(), Some("dropped"));
}

#[tokio::test]
async fn deepgram_survives_refused_handshakes_and_reports_bad_keys() {
    let double = DeepgramDouble::start(double_config()).await.unwrap();
    double.refuse_next(&[503, 503]);
    let run = Run::start(Arc::new(deepgram(&double)), "en");
    run.send(frames(&DeepgramDouble::speak(&[1], 200, 100), T0)).await;
    run.send(vec![AudioEvent::UtteranceEnd]).await;
    run.wait_for("a final after two refusals", |r| r.iter().any(|t| t.is_final)).await;
    let results = run.finish().await;
    assert_eq!(finals(&results)[0].text, "plants");
    assert_eq!(double.connections().len(), 3);

    // A wrong key: every handshake gets 401; the provider gives up when the speaker is gone.
    let bad = DeepgramStt::new(double.url().parse().unwrap(), "nova-2".into(), Some(Secret::new("wrong")))
        .with_reconnect_base(Duration::from_millis(20));
    let run = Run::start(Arc::new(bad), "en");
    run.send(frames(&DeepgramDouble::speak(&[1], 200, 100), T0)).await;
    let started = Instant::now();
    let results = run.finish().await;
    assert!(results.is_empty());
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(double.connections().len() > 3);
}
