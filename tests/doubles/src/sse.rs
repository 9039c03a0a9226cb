//! Not a double: a Server-Sent Events reader for the tests of both packages (the API tests and the CLI's
//! tests of the real binary), which read confctl's event streams as a browser's `EventSource` would.

// A test fixture: panicking with the reason is how it reports a stream that is not what the test expects.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;

/// A Server-Sent Events reader for tests.
pub struct Sse {
    response: reqwest::Response,
    buffer: String,
}

impl Sse {
    /// Opens a stream; panics unless the server answers 200 with `text/event-stream`.
    pub async fn open(http: &reqwest::Client, url: &str) -> Self {
        let response = http.get(url).header("accept", "text/event-stream").send().await.unwrap();
        assert_eq!(response.status(), 200, "SSE {url}");
        let ctype = response.headers()["content-type"].to_str().unwrap().to_owned();
        assert!(ctype.starts_with("text/event-stream"), "{ctype}");
        Self { response, buffer: String::new() }
    }

    /// A stream from a request the test made itself (with headers of its own).
    pub fn from_response(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200, "SSE {}", response.url());
        Self { response, buffer: String::new() }
    }

    /// The next named event and its JSON data (comments such as heartbeats are skipped); `None` when the
    /// stream ended (or its connection broke). Panics after 10 s without an event.
    pub async fn next(&mut self) -> Option<(String, Value)> {
        self.next_with_id().await.map(|(name, data, _)| (name, data))
    }

    /// Like [`Sse::next`], with the event's `id:` when it has one.
    pub async fn next_with_id(&mut self) -> Option<(String, Value, Option<u64>)> {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut name = "message".to_owned();
                let mut data = String::new();
                let mut id = None;
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    } else if let Some(v) = line.strip_prefix("id:") {
                        id = Some(v.trim().parse().unwrap());
                    }
                }
                if data.is_empty() {
                    continue;
                }
                return Some((name, serde_json::from_str(&data).unwrap(), id));
            }
            let chunk =
                tokio::time::timeout_at(deadline, self.response.chunk()).await.expect("no SSE event within 10 s");
            match chunk {
                Ok(Some(bytes)) => self.buffer.push_str(&String::from_utf8_lossy(&bytes)),
                // Ended by the server, or the connection broke (a server killed under the test).
                Ok(None) | Err(_) => return None,
            }
        }
    }
}
