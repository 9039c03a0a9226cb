//! Summaries by a chat model behind any OpenAI-compatible `/chat/completions` endpoint (OpenAI, Ollama, vLLM,
//! llama.cpp's server). The transcript goes in with each line's start time; the model answers with the
//! summary JSON, in the lecture's language, pointing back at those times. Long transcripts are summarised in
//! parts and the parts merged. Overload, outages and malformed answers are retried with backoff; what still
//! fails comes back as a readable reason.

use std::time::Duration;

use serde_json::{Value, json};

use super::{ActionItem, Citation, Extras, QuestionAnswer, Summary, Topic};
use crate::agent::transcript::Segment;
use crate::secret::Secret;

/// Transcript characters per request: about 6,000 tokens, within every current model's context with room
/// for the answer.
const CHUNK_CHARS: usize = 24_000;
const ATTEMPTS: u32 = 3;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(180);
const MAX_TOPICS: usize = 8;

/// The label this summariser puts on its output.
pub const KIND: &str = "llm";

#[derive(Debug, Clone)]
pub struct LlmSummariser {
    endpoint: String,
    host: String,
    model: String,
    api_key: Option<Secret>,
    http: reqwest::Client,
    chunk_chars: usize,
    retry_base: Duration,
}

/// Why no summary came back.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct LlmError(pub String);

enum Failure {
    /// Worth another attempt (overload, outage, a malformed answer).
    Transient(String),
    Permanent(String),
}

impl LlmSummariser {
    /// `base_url` is the API base including its version, e.g. `https://api.openai.com/v1`.
    pub fn new(base_url: &url::Url, model: String, api_key: Option<Secret>) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build()?;
        Ok(Self {
            endpoint: format!("{}/chat/completions", base_url.as_str().trim_end_matches('/')),
            host: base_url.host_str().unwrap_or("llm").to_owned(),
            model,
            api_key,
            http,
            chunk_chars: CHUNK_CHARS,
            retry_base: Duration::from_secs(2),
        })
    }

    /// Smaller parts and shorter pauses between retries (tests).
    #[must_use]
    pub fn with_limits(mut self, chunk_chars: usize, retry_base: Duration) -> Self {
        self.chunk_chars = chunk_chars.max(200);
        self.retry_base = retry_base;
        self
    }

    /// Who wrote the summary, for the artifact: the endpoint's host.
    pub fn provider(&self) -> &str {
        &self.host
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    pub async fn summarise(&self, segments: &[Segment], extras: &Extras, language: &str) -> Result<Summary, LlmError> {
        let lines: Vec<String> = segments
            .iter()
            .map(|s| {
                format!("[{}] {}: {}", s.start_ms, s.speaker(), s.text.split_whitespace().collect::<Vec<_>>().join(" "))
            })
            .collect();
        let chunks = chunk(&lines, self.chunk_chars);
        let system = system_prompt(language);
        let context = context_text(extras);
        let mut summary = if chunks.len() <= 1 {
            let user = format!("{context}Transcript (each line: [startMs] speaker: text):\n{}", chunks.concat());
            self.ask(&system, &user).await?
        } else {
            let mut parts = Vec::with_capacity(chunks.len());
            for (i, part) in chunks.iter().enumerate() {
                let user = format!(
                    "{context}This is part {} of {} of the transcript. Summarise this part only.\n\
                     Transcript part (each line: [startMs] speaker: text):\n{part}",
                    i + 1,
                    chunks.len()
                );
                parts.push(self.ask(&system, &user).await?);
            }
            let partials: Vec<Value> = parts.iter().map(summary_json).collect();
            let user = format!(
                "{context}These are JSON summaries of the consecutive parts of one lecture, in order. Merge them into \
                 one JSON object of the same shape: one abstract for the whole lecture, the most important distinct \
                 topics (at most {MAX_TOPICS}), every action item and every question with its answer, without \
                 repeats. Keep each item's startMs.\n{}",
                Value::Array(partials)
            );
            self.ask(&system, &user).await?
        };
        snap_times(&mut summary, segments);
        summary.language = language.to_owned();
        summary.kind = KIND.to_owned();
        Ok(summary)
    }

    /// One question to the model, retried; the answer parsed into a summary.
    async fn ask(&self, system: &str, user: &str) -> Result<Summary, LlmError> {
        let mut json_mode = true;
        let mut last = String::new();
        let mut attempt = 0;
        while attempt < ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(self.retry_base * 2u32.pow(attempt - 1)).await;
            }
            attempt += 1;
            match self.complete(system, user, json_mode).await {
                Ok(text) => match parse_summary(&text) {
                    Some(summary) => return Ok(summary),
                    None => last = format!("the model's answer was not the summary JSON: {}", excerpt(&text)),
                },
                // Some servers do not know `response_format`: ask again without it, at no cost of an attempt.
                Err(Failure::Permanent(reason)) if json_mode && reason.contains("response_format") => {
                    json_mode = false;
                    attempt -= 1;
                    last = reason;
                }
                Err(Failure::Permanent(reason)) => return Err(LlmError(reason)),
                Err(Failure::Transient(reason)) => last = reason,
            }
        }
        Err(LlmError(format!("{last} (gave up after {ATTEMPTS} attempts)")))
    }

    async fn complete(&self, system: &str, user: &str, json_mode: bool) -> Result<String, Failure> {
        let mut body = json!({
            "model": self.model,
            "temperature": 0.2,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        });
        if json_mode {
            body["response_format"] = json!({"type": "json_object"});
        }
        let mut request = self.http.post(&self.endpoint).json(&body);
        if let Some(key) = &self.api_key {
            request = request.bearer_auth(key.expose());
        }
        let response =
            request.send().await.map_err(|e| Failure::Transient(format!("cannot reach {}: {e}", self.endpoint)))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| Failure::Transient(e.to_string()))?;
        if !status.is_success() {
            let message = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["error"]["message"].as_str().or(v["error"].as_str()).map(str::to_owned))
                .unwrap_or_else(|| excerpt(&text));
            let reason = match status.as_u16() {
                401 | 403 => format!("the language model at {} refused the API key ({status}): {message}", self.host),
                429 => {
                    format!("the language model at {} is over its rate limit or quota ({status}): {message}", self.host)
                }
                _ => format!("the language model at {} answered {status}: {message}", self.host),
            };
            return Err(if status.as_u16() == 429 || status.is_server_error() {
                Failure::Transient(reason)
            } else {
                Failure::Permanent(reason)
            });
        }
        let answer: Value = serde_json::from_str(&text)
            .map_err(|_| Failure::Transient(format!("the language model sent malformed JSON: {}", excerpt(&text))))?;
        answer["choices"][0]["message"]["content"].as_str().map(str::to_owned).ok_or_else(|| {
            Failure::Transient(format!("the language model's answer has no message: {}", excerpt(&text)))
        })
    }
}

fn language_name(code: &str) -> &str {
    match code.split('-').next().unwrap_or(code) {
        "en" => "English",
        "ru" => "Russian",
        "uk" => "Ukrainian",
        "de" => "German",
        "fr" => "French",
        "es" => "Spanish",
        "it" => "Italian",
        "pt" => "Portuguese",
        "pl" => "Polish",
        "nl" => "Dutch",
        "tr" => "Turkish",
        "zh" => "Chinese",
        "ja" => "Japanese",
        "kk" => "Kazakh",
        _ => code,
    }
}

fn system_prompt(language: &str) -> String {
    format!(
        "You summarise university lectures from their transcripts. Write every text value in {} (the lecture's \
         language, code `{language}`), whatever the language of these instructions. Reply with one JSON object and \
         nothing else, of exactly this shape:\n\
         {{\"abstract\": \"3 to 6 sentences on what the lecture covered\", \
         \"keyTopics\": [{{\"topic\": \"a short name\", \"startMs\": 0}}], \
         \"actionItems\": [{{\"text\": \"a task the lecturer gave the audience: homework, reading, a deadline\", \"startMs\": 0}}], \
         \"qa\": [{{\"question\": \"a question asked during the lecture\", \"answer\": \"the answer given, or an empty string\", \"startMs\": 0}}]}}\n\
         Every startMs is the number in brackets at the start of the transcript line the item comes from. Use only \
         what the transcript says; leave a list empty rather than invent items.",
        language_name(language)
    )
}

fn context_text(extras: &Extras) -> String {
    let mut out = String::new();
    if !extras.title.trim().is_empty() {
        out.push_str(&format!("Lecture: {}\n", extras.title.trim()));
    }
    if !extras.speakers.is_empty() {
        out.push_str(&format!("Speakers: {}\n", extras.speakers.join(", ")));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

/// Transcript lines grouped into parts of at most `max` characters (a longer line is a part of its own).
fn chunk(lines: &[String], max: usize) -> Vec<String> {
    let mut chunks: Vec<String> = Vec::new();
    let mut current = String::new();
    for line in lines {
        if !current.is_empty() && current.len() + line.len() + 1 > max {
            chunks.push(std::mem::take(&mut current));
        }
        current.push_str(line);
        current.push('\n');
    }
    if !current.is_empty() {
        chunks.push(current);
    }
    chunks
}

fn summary_json(summary: &Summary) -> Value {
    json!({
        "abstract": summary.abstract_text,
        "keyTopics": summary.key_topics,
        "actionItems": summary.action_items,
        "qa": summary.qa,
    })
}

/// The summary in a model's answer: the JSON object in it (also inside a ```json fence or after some
/// words), with fields read leniently (a topic may be a plain string, a number may be a string).
fn parse_summary(text: &str) -> Option<Summary> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    let value: Value = serde_json::from_str(text.get(start..=end)?).ok()?;
    let object = value.as_object()?;
    let abstract_text = object.get("abstract").or(object.get("summary")).and_then(Value::as_str)?.trim().to_owned();
    let list = |names: &[&str]| -> Vec<Value> {
        names.iter().find_map(|n| object.get(*n)).and_then(Value::as_array).cloned().unwrap_or_default()
    };
    let text_of = |item: &Value, keys: &[&str]| -> String {
        match item {
            Value::String(s) => s.trim().to_owned(),
            _ => keys.iter().find_map(|k| item.get(*k).and_then(Value::as_str)).unwrap_or_default().trim().to_owned(),
        }
    };
    let ms = |item: &Value| -> i64 {
        match item.get("startMs").or(item.get("start_ms")) {
            Some(Value::Number(n)) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)).unwrap_or(0),
            Some(Value::String(s)) => s.trim().trim_matches(|c| c == '[' || c == ']').parse().unwrap_or(0),
            _ => 0,
        }
    };
    let key_topics = list(&["keyTopics", "key_topics", "topics"])
        .iter()
        .map(|t| Topic {
            topic: text_of(t, &["topic", "title", "name"]),
            cite: Citation::new(ms(t), ms(t)),
            edited: false,
        })
        .filter(|t| !t.topic.is_empty())
        .take(MAX_TOPICS)
        .collect();
    let action_items = list(&["actionItems", "action_items"])
        .iter()
        .map(|a| ActionItem {
            text: text_of(a, &["text", "item", "task"]),
            cite: Citation::new(ms(a), ms(a)),
            edited: false,
        })
        .filter(|a| !a.text.is_empty())
        .collect();
    let qa = list(&["qa", "questions"])
        .iter()
        .map(|q| QuestionAnswer {
            question: text_of(q, &["question", "q"]),
            answer: q.get("answer").or(q.get("a")).and_then(Value::as_str).unwrap_or_default().trim().to_owned(),
            cite: Citation::new(ms(q), ms(q)),
            edited: false,
        })
        .filter(|q| !q.question.is_empty())
        .collect();
    Some(Summary { abstract_text, key_topics, action_items, qa, kind: KIND.to_owned(), language: String::new() })
}

/// Models misquote numbers: every pointer becomes the start of the transcript line at or before it.
fn snap_times(summary: &mut Summary, segments: &[Segment]) {
    let starts: Vec<i64> = segments.iter().map(|s| s.start_ms).collect();
    let snap = |ms: i64| -> i64 {
        match starts.binary_search(&ms) {
            Ok(_) => ms,
            Err(0) => starts.first().copied().unwrap_or(0),
            Err(i) => starts[i - 1],
        }
    };
    for t in &mut summary.key_topics {
        t.cite = Citation::new(snap(t.cite.start_ms), snap(t.cite.start_ms));
    }
    for a in &mut summary.action_items {
        a.cite = Citation::new(snap(a.cite.start_ms), snap(a.cite.start_ms));
    }
    for q in &mut summary.qa {
        q.cite = Citation::new(snap(q.cite.start_ms), snap(q.cite.start_ms));
    }
}

fn excerpt(text: &str) -> String {
    crate::agent::stt::openai::excerpt(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read_leniently() {
        let text = "Sure! ```json\n{\"abstract\": \" About plants. \", \"keyTopics\": [\"photosynthesis\", {\"topic\": \"light\", \"startMs\": \"[1200]\"}],\
                    \"actionItems\": [{\"item\": \"Read chapter 4\", \"startMs\": 5000.0}], \"qa\": [{\"question\": \"Why green?\"}]}\n```";
        let s = parse_summary(text).unwrap();
        assert_eq!(s.abstract_text, "About plants.");
        assert_eq!(s.key_topics[0], Topic { topic: "photosynthesis".into(), cite: Citation::new(0, 0), edited: false });
        assert_eq!(s.key_topics[1].cite.start_ms, 1200);
        assert_eq!(
            s.action_items[0],
            ActionItem { text: "Read chapter 4".into(), cite: Citation::new(5000, 5000), edited: false }
        );
        assert_eq!(s.qa[0].answer, "");
        assert!(parse_summary("I cannot summarise this.").is_none());
        assert!(parse_summary("{\"keyTopics\": []}").is_none(), "no abstract, no summary");
    }

    #[test]
    fn transcripts_are_cut_at_line_boundaries() {
        let lines: Vec<String> = (0..10).map(|i| format!("[{i}] A: {}", "x".repeat(40))).collect();
        let chunks = chunk(&lines, 100);
        assert_eq!(chunks.len(), 5);
        assert!(chunks.iter().all(|c| c.len() <= 100 && c.ends_with('\n')));
        assert_eq!(chunks.concat(), lines.iter().map(|l| format!("{l}\n")).collect::<String>());
    }

    #[test]
    fn prompts_ask_for_the_lectures_language() {
        assert!(system_prompt("ru").contains("Russian"));
        assert!(system_prompt("sw").contains("`sw`"));
    }
}
