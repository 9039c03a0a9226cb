//! Server-Sent Events, built one way for every stream: events end when the server shuts down, and a
//! `:heartbeat` comment every 15 s keeps proxies from closing quiet streams.

use std::convert::Infallible;
use std::time::Duration;

use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};

use crate::app::App;

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

/// An event named `name` with `data` as JSON.
pub fn json_event(name: &str, data: &impl serde::Serialize) -> Event {
    Event::default().event(name).json_data(data).unwrap_or_else(|_| Event::default().event(name).data("{}"))
}
