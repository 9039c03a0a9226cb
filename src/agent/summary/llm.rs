//! Summaries by a chat model behind any OpenAI-compatible `/chat/completions` endpoint (OpenAI, Ollama, vLLM,
//! llama.cpp's server). The transcript goes in one segment a line, each opened by an id and its time
//! (`[s12 00:03:12]`); the model answers with the summary JSON, in the lecture's language, each item citing
//! the ids of the lines it comes from. Citations are checked, never repaired: an item citing a line that does
//! not exist — or that the request did not show — is dropped. Long transcripts are summarised in parts and
//! the parts merged, in rounds, so that no request outgrows a part's budget however long the lecture.
//! Overload, outages and malformed answers are retried with backoff; what still fails comes back as a
//! readable reason.

use std::ops::Range;
use std::time::Duration;

use serde_json::{Value, json};

use super::{ActionItem, Citation, Extras, QuestionAnswer, Summary, Topic};
use crate::agent::transcript::{Segment, ordered};
use crate::export::clock::clock;
use crate::secret::Secret;

/// Transcript bytes per request (UTF-8, counted as `chunk` counts them): about 6,000 tokens — some four bytes
/// a token in English and in Cyrillic alike — within every current model's context with room for the answer.
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

    /// Asks for another model (the AI settings' `llmModel`) at the same endpoint.
    #[must_use]
    pub fn with_model(mut self, model: String) -> Self {
        self.model = model;
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
        // Line ids are positions in transcript order: the same order maps the model's citations back.
        let segments = ordered(segments);
        let lines = transcript_lines(&segments);
        let parts = chunk(&lines, self.chunk_chars);
        let system = system_prompt(language);
        let context = context_text(extras);
        let mut dropped = 0;
        let mut summary = if parts.len() <= 1 {
            let user = format!("{context}Transcript (each line: [id time] speaker: text):\n{}", lines_text(&lines));
            self.ask(&system, &user, &segments, 0..segments.len(), &mut dropped).await?
        } else {
            let mut summaries = Vec::with_capacity(parts.len());
            for (i, part) in parts.iter().enumerate() {
                let user = format!(
                    "{context}This is part {} of {} of the transcript. Summarise this part only.\n\
                     Transcript part (each line: [id time] speaker: text):\n{}",
                    i + 1,
                    parts.len(),
                    lines_text(&lines[part.clone()])
                );
                summaries.push((part.clone(), self.ask(&system, &user, &segments, part.clone(), &mut dropped).await?));
            }
            self.merge(&system, &context, &segments, summaries, &mut dropped).await?
        };
        if dropped > 0 {
            tracing::warn!(
                dropped,
                model = %self.model,
                "the model cited lines that are not in the transcript; those summary items were dropped"
            );
        }
        summary.language = language.to_owned();
        summary.kind = KIND.to_owned();
        Ok(summary)
    }

    /// Merges the summaries of consecutive stretches of lines into one, in rounds: each request shows as
    /// many summaries as fit in a part's budget (all of them, for most lectures), so a long lecture's merge
    /// never outgrows the context its parts fit in.
    async fn merge(
        &self,
        system: &str,
        context: &str,
        segments: &[Segment],
        mut summaries: Vec<(Range<usize>, Summary)>,
        dropped: &mut usize,
    ) -> Result<Summary, LlmError> {
        while summaries.len() > 1 {
            let shown: Vec<String> = summaries.iter().map(|(_, s)| summary_json(s, segments).to_string()).collect();
            let mut groups = chunk(&shown, self.chunk_chars);
            if groups.len() == summaries.len() {
                // Not even two fit together: merge them all at once rather than never.
                groups.clear();
                groups.push(0..summaries.len());
            }
            let mut rest = summaries.into_iter();
            summaries = Vec::with_capacity(groups.len());
            for group in groups {
                let taken: Vec<(Range<usize>, Summary)> = rest.by_ref().take(group.len()).collect();
                let (Some(first), Some(last)) = (taken.first(), taken.last()) else { continue };
                if taken.len() == 1 {
                    summaries.extend(taken);
                    continue;
                }
                let lines = first.0.start..last.0.end;
                let user = format!(
                    "{context}These are JSON summaries of consecutive parts of one lecture, in order. Merge them into \
                     one JSON object of the same shape: one abstract for all of them, the most important distinct \
                     topics (at most {MAX_TOPICS}), every action item and every question with its answer, without \
                     repeats. Keep each item's segmentIds as they are; when several items become one, keep the \
                     segmentIds of the one that covers it best.\n[{}]",
                    shown[group].join(",")
                );
                summaries.push((lines.clone(), self.ask(system, &user, segments, lines, dropped).await?));
            }
        }
        summaries.pop().map(|(_, s)| s).ok_or_else(|| LlmError("there was nothing to merge".to_owned()))
    }

    /// One question to the model, retried; the answer parsed into a summary whose items cite the lines
    /// `shown` (indices into `segments`), those that do not adding to `dropped`.
    async fn ask(
        &self,
        system: &str,
        user: &str,
        segments: &[Segment],
        shown: Range<usize>,
        dropped: &mut usize,
    ) -> Result<Summary, LlmError> {
        let mut json_mode = true;
        let mut last = String::new();
        let mut attempt = 0;
        while attempt < ATTEMPTS {
            if attempt > 0 {
                tokio::time::sleep(self.retry_base * 2u32.pow(attempt - 1)).await;
            }
            attempt += 1;
            match self.complete(system, user, json_mode).await {
                Ok(text) => match parse_summary(&text, segments, shown.clone()) {
                    Some((summary, n)) => {
                        *dropped += n;
                        return Ok(summary);
                    }
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
         \"keyTopics\": [{{\"topic\": \"a short name\", \"segmentIds\": [\"s3\", \"s8\"]}}], \
         \"actionItems\": [{{\"text\": \"a task the lecturer gave the audience: homework, reading, a deadline\", \"segmentIds\": [\"s14\"]}}], \
         \"qa\": [{{\"question\": \"a question asked during the lecture\", \"answer\": \"the answer given, or an empty string\", \"segmentIds\": [\"s20\", \"s21\"]}}]}}\n\
         Each transcript line starts with its id and time, like [s12 00:03:12]. An item's segmentIds are the ids of \
         the lines it comes from: for a topic the first and the last line of the passage that discusses it, for an \
         action item the line that gives it, for a question the line that asks it and the last line of its answer. \
         Cite only ids that appear in the transcript: an item with an unknown id is discarded. Use only what the \
         transcript says; leave a list empty rather than invent items.",
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

/// The id the model cites a line by: `s` and its position in transcript order, from 1.
fn line_id(index: usize) -> String {
    format!("s{}", index + 1)
}

/// One line per segment, `[s12 00:03:12] Ada: text`: a short id to cite (a few tokens, where a segment's own
/// id could be a UUID), and the time for the model's sense of the lecture's course.
fn transcript_lines(segments: &[Segment]) -> Vec<String> {
    segments
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let text = s.text.split_whitespace().collect::<Vec<_>>().join(" ");
            format!("[{} {}] {}: {text}", line_id(i), clock(s.start_ms), s.speaker())
        })
        .collect()
}

/// Runs of consecutive lines of at most `max` bytes with their newlines (a longer line is a run of its
/// own), as index ranges.
fn chunk(lines: &[String], max: usize) -> Vec<Range<usize>> {
    let mut runs = Vec::new();
    let (mut start, mut bytes) = (0, 0);
    for (i, line) in lines.iter().enumerate() {
        if i > start && bytes + line.len() + 1 > max {
            runs.push(start..i);
            (start, bytes) = (i, 0);
        }
        bytes += line.len() + 1;
    }
    if start < lines.len() {
        runs.push(start..lines.len());
    }
    runs
}

fn lines_text(lines: &[String]) -> String {
    lines.iter().flat_map(|l| [l.as_str(), "\n"]).collect()
}

/// A part's summary as the merge request shows it: the answer's shape, each item citing the first and the
/// last line its range covers.
fn summary_json(summary: &Summary, segments: &[Segment]) -> Value {
    let ids = |cite: Citation| -> Vec<String> {
        let inside = |s: &Segment| cite.start_ms <= s.start_ms && s.end_ms <= cite.end_ms;
        let first = segments.iter().position(inside);
        let last = segments.iter().rposition(inside);
        let mut ids: Vec<String> = first.into_iter().chain(last).map(line_id).collect();
        ids.dedup();
        ids
    };
    json!({
        "abstract": summary.abstract_text,
        "keyTopics": summary.key_topics.iter().map(|t| json!({"topic": t.topic, "segmentIds": ids(t.cite)})).collect::<Vec<_>>(),
        "actionItems": summary.action_items.iter().map(|a| json!({"text": a.text, "segmentIds": ids(a.cite)})).collect::<Vec<_>>(),
        "qa": summary.qa.iter().map(|q| json!({"question": q.question, "answer": q.answer, "segmentIds": ids(q.cite)})).collect::<Vec<_>>(),
    })
}

/// The summary in a model's answer: the JSON object in it (also inside a ```json fence or after some
/// words), with fields read leniently (other spellings of the keys, numbers as strings), and how many items
/// were dropped because their citation is missing or names no line `shown` (indices into `segments`).
fn parse_summary(text: &str, segments: &[Segment], shown: Range<usize>) -> Option<(Summary, usize)> {
    let start = text.find('{')?;
    let end = text.rfind('}')?;
    let value: Value = serde_json::from_str(text.get(start..=end)?).ok()?;
    let object = value.as_object()?;
    let abstract_text = object.get("abstract").or(object.get("summary")).and_then(Value::as_str)?.trim().to_owned();
    let list = |names: &[&str]| -> Vec<Value> {
        names.iter().find_map(|n| object.get(*n)).and_then(Value::as_array).cloned().unwrap_or_default()
    };
    // A bare string is an item without a citation: read, so that it counts as dropped.
    let text_of = |item: &Value, keys: &[&str]| -> String {
        match item {
            Value::String(s) => s.trim().to_owned(),
            _ => keys.iter().find_map(|k| item.get(*k).and_then(Value::as_str)).unwrap_or_default().trim().to_owned(),
        }
    };
    let mut dropped = 0;
    let mut cited = |item: &Value| {
        let cite = citation(item, segments, shown.clone());
        dropped += usize::from(cite.is_none());
        cite
    };
    let key_topics = list(&["keyTopics", "key_topics", "topics"])
        .iter()
        .filter_map(|t| {
            let topic = text_of(t, &["topic", "title", "name"]);
            if topic.is_empty() {
                return None;
            }
            Some(Topic { topic, cite: cited(t)?, edited: false })
        })
        .take(MAX_TOPICS)
        .collect();
    let action_items = list(&["actionItems", "action_items"])
        .iter()
        .filter_map(|a| {
            let text = text_of(a, &["text", "item", "task"]);
            if text.is_empty() {
                return None;
            }
            Some(ActionItem { text, cite: cited(a)?, edited: false })
        })
        .collect();
    let qa = list(&["qa", "questions"])
        .iter()
        .filter_map(|q| {
            let question = text_of(q, &["question", "q"]);
            if question.is_empty() {
                return None;
            }
            let answer = q.get("answer").or(q.get("a")).and_then(Value::as_str).unwrap_or_default().trim().to_owned();
            Some(QuestionAnswer { question, answer, cite: cited(q)?, edited: false })
        })
        .collect();
    let summary =
        Summary { abstract_text, key_topics, action_items, qa, kind: KIND.to_owned(), language: String::new() };
    Some((summary, dropped))
}

/// The range of transcript an item cites, from whole lines: its `segmentIds` (every one must name a line
/// the request showed; the range runs from the first named to the last), or else its `startMs`..`endMs`
/// (which must touch a line shown; the range is that of the lines it touches). `None` when it cites nothing
/// the model was shown: a model's citation is checked, never moved to the nearest line.
fn citation(item: &Value, segments: &[Segment], shown: Range<usize>) -> Option<Citation> {
    let ids =
        ["segmentIds", "segment_ids", "segments", "segmentId", "segment_id", "ids"].iter().find_map(|k| item.get(*k));
    let named = |id: &Value| line_index(id).filter(|i| shown.contains(i));
    let cited: Vec<&Segment> = match ids {
        Some(Value::Array(ids)) => {
            let lines = ids.iter().map(named).collect::<Option<Vec<usize>>>()?;
            segments.get(*lines.iter().min()?..=*lines.iter().max()?)?.iter().collect()
        }
        Some(id) => segments.get(named(id)?).into_iter().collect(),
        None => {
            let (start, second) = time(item.get("startMs").or(item.get("start_ms"))?)?;
            let end = item.get("endMs").or(item.get("end_ms")).and_then(time).map_or(second, |(_, end)| end);
            let range = Citation::new(start, end);
            segments.get(shown)?.iter().filter(|s| range.touches(s)).collect()
        }
    };
    Citation::of(&cited)
}

/// The position of the line an id names — `s12`, `S12`, `[s12 00:03:12]`, `"12"` or `12`; lines count
/// from 1.
fn line_index(id: &Value) -> Option<usize> {
    let n = match id {
        Value::Number(n) => n.as_u64()?,
        Value::String(s) => {
            let token = s.trim().trim_start_matches('[').split(|c: char| c.is_whitespace() || c == ']').next()?;
            token.trim_start_matches(['s', 'S']).parse().ok()?
        }
        _ => return None,
    };
    usize::try_from(n).ok()?.checked_sub(1)
}

/// A time a model quoted, as a range: milliseconds (a number, or a string of one, possibly in brackets), or
/// a clock (`00:03:12`, `03:12`) as the transcript lines show it, which stands for that whole second.
fn time(value: &Value) -> Option<(i64, i64)> {
    let text = match value {
        Value::Number(n) => {
            let ms = n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?;
            return Some((ms, ms));
        }
        Value::String(s) => s.trim().trim_matches(|c| c == '[' || c == ']'),
        _ => return None,
    };
    if !text.contains(':') {
        let ms = text.parse().ok()?;
        return Some((ms, ms));
    }
    let mut seconds: i64 = 0;
    for part in text.split(':') {
        seconds = seconds.checked_mul(60)?.checked_add(part.trim().parse::<u32>().ok()?.into())?;
    }
    let ms = seconds.checked_mul(1000)?;
    Some((ms, ms + 999))
}

fn excerpt(text: &str) -> String {
    crate::agent::stt::openai::excerpt(text)
}

#[cfg(test)]
mod tests;
