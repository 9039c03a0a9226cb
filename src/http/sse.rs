//! Server-Sent Events, built one way for every stream: events end when the server shuts down, and a
//! `:heartbeat` comment every 15 s keeps proxies from closing quiet streams.

use std::convert::Infallible;
use std::time::Duration;

use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};

use crate::app::App;
use crate::error::Error;

/// Proxies close idle connections after a minute or so; a comment every 15 s keeps streams open.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// Wraps a stream of events as an SSE response that stops at shutdown and carries heartbeats.
pub fn respond<S>(events: S, app: App) -> Sse<impl Stream<Item = Result<Event, Infallible>>>
where
    S: Stream<Item = Event> + Send + 'static,
{
    let until_shutdown = events.take_until(async move { app.shutting_down().await }).map(Ok);
    Sse::new(until_shutdown).keep_alive(KeepAlive::new().interval(HEARTBEAT).text("heartbeat"))
}

/// The id of the last event a reconnecting client had: the `Last-Event-ID` header (browsers send it when they
/// reconnect by themselves), or `?lastEventId=` (for the first connect, where `EventSource` sets no headers).
pub fn last_event_id(headers: &HeaderMap, from_query: Option<u64>) -> Result<Option<u64>, Error> {
    match headers.get("last-event-id").and_then(|v| v.to_str().ok()).map(str::trim) {
        Some(text) if !text.is_empty() => text
            .parse::<u64>()
            .map(Some)
            .map_err(|_| Error::invalid("invalid_last_event_id", "Last-Event-ID must be an event id")),
        _ => Ok(from_query),
    }
}

/// An event named `name` with `data` as JSON.
pub fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default().event(name).json_data(data).unwrap_or_else(|_| Event::default().event(name).data("{}"))
}
