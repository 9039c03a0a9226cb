//! Owns the test doubles confctl's tests run against: [`LiveKitDouble`], a stand-in for a LiveKit server's server API,
//! with the signalling and media side the AI assistant joins rooms through (`/rtc`, see `rtc`), and the
//! assistant's other doubles ([`DeepgramDouble`], [`LlmDouble`]; see each module), and [`GoogleDouble`]
//! (Google's OAuth endpoints and Drive v3) for Drive export. It also holds the rule for tests whose real
//! service is missing ([`services::require`]), shared by both packages' test binaries, and the one way to start
//! the real livekit-server ([`livekit_server`]), and a reader of confctl's event streams ([`sse`]).
//!
//! The double speaks Twirp `livekit.RoomService` (protobuf and JSON), authenticates every call
//! with the configured API key/secret and checks grants exactly as livekit-server does, keeps
//! rooms and participants in memory, records every call, and sends webhooks signed the way
//! LiveKit signs them. Integration tests start it in-process; browser tests run the
//! `livekit-double` binary and drive it over `/_double/...`.

mod auth;
mod control;
pub mod deepgram;
pub mod gdrive;
mod ids;
pub mod livekit_server;
pub mod llm;
pub mod media;
mod recording;
mod rtc;
pub mod services;
pub mod sse;
mod state;
mod twirp;
pub mod webhook;

use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::Context as _;
use axum::Router;
use axum::routing::any;
use livekit_api::access_token::{AccessToken, VideoGrants};
use livekit_api::services::room::RoomClient;
use livekit_protocol as proto;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use deepgram::{DeepgramConnection, DeepgramDouble, DeepgramDoubleConfig};
pub use gdrive::{Consent, GoogleDouble, GoogleDoubleConfig};
pub use llm::{LlmDouble, LlmReply};
pub use recording::{RecordedCall, SentData};
pub use rtc::RtcSession;
pub use state::default_join_permission;
pub use twirp::ROOM_SERVICE_METHODS;
pub use webhook::{WebhookDelivery, WebhookSender, WebhookTamper};

/// How a [`LiveKitDouble`] behaves.
#[derive(Debug, Clone)]
pub struct LiveKitDoubleConfig {
    pub api_key: String,
    pub api_secret: String,
    /// Where state changes are announced as webhooks; `None` sends none.
    pub webhook_url: Option<String>,
    /// LiveKit's `room.enable_remote_unmute`; off by default there too, so unmuting through
    /// `MutePublishedTrack` fails with `failed_precondition` unless a test opts in.
    pub enable_remote_unmute: bool,
}

impl LiveKitDoubleConfig {
    pub fn new(api_key: &str, api_secret: &str) -> Self {
        Self {
            api_key: api_key.to_owned(),
            api_secret: api_secret.to_owned(),
            webhook_url: None,
            enable_remote_unmute: false,
        }
    }

    #[must_use]
    pub fn with_webhook_url(mut self, url: &str) -> Self {
        self.webhook_url = Some(url.to_owned());
        self
    }

    #[must_use]
    pub fn with_remote_unmute(mut self, enabled: bool) -> Self {
        self.enable_remote_unmute = enabled;
        self
    }
}

impl Default for LiveKitDoubleConfig {
    /// The key pair `livekit-server --dev` uses, so dev configs work against the double as-is.
    fn default() -> Self {
        Self::new("devkey", "secret")
    }
}

/// State shared by the HTTP handlers and every [`LiveKitDouble`] handle.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) api_key: String,
    pub(crate) api_secret: String,
    pub(crate) enable_remote_unmute: bool,
    addr: SocketAddr,
    pub(crate) store: Mutex<state::Store>,
    pub(crate) recorder: Mutex<recording::Recorder>,
    notifier: webhook::Notifier,
    sender: WebhookSender,
    /// The signalling and media side (`/rtc`).
    pub(crate) rtc: rtc::RtcState,
    /// RoomService methods that answer 503 `unavailable`, as a server behind a failing proxy or in the
    /// middle of a restart does: the failure a real server cannot be made to produce on demand.
    pub(crate) failing: Mutex<std::collections::HashSet<String>>,
}

impl Shared {
    pub(crate) fn emit(&self, events: Vec<proto::WebhookEvent>) {
        self.rtc.observe(&events);
        self.notifier.notify(events);
    }
}

/// A test's lock must not be lost because another test thread panicked while holding it: the
/// data is plain records, still meaningful after a panic.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Installs ring as the process's rustls provider. reqwest is built without one here, so any
/// test that makes its own reqwest client before starting a double should call this first;
/// calling it again is harmless.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// Stops the server and the webhook worker when the last owning handle goes away, so a test
/// that forgets `shutdown` does not leak a listener into the next one.
#[derive(Debug)]
struct Tasks {
    shutdown: Mutex<Option<oneshot::Sender<()>>>,
    serve: Mutex<Option<JoinHandle<()>>>,
    notifier: JoinHandle<()>,
}

impl Drop for Tasks {
    fn drop(&mut self) {
        if let Some(serve) = lock(&self.serve).take() {
            serve.abort();
        }
        self.notifier.abort();
    }
}

/// A running LiveKit server double. Clones share the same server and state; the server stops
/// when the last clone is dropped or [`shutdown`](Self::shutdown) is called.
#[derive(Debug, Clone)]
pub struct LiveKitDouble {
    shared: Arc<Shared>,
    tasks: Option<Arc<Tasks>>,
}

impl LiveKitDouble {
    /// Starts on an ephemeral port on 127.0.0.1.
    pub async fn start(config: LiveKitDoubleConfig) -> anyhow::Result<Self> {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), config).await
    }

    pub async fn start_on(addr: SocketAddr, config: LiveKitDoubleConfig) -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind(addr).await.with_context(|| format!("binding the LiveKit double to {addr}"))?;
        Self::start_with_listener(listener, config).await
    }

    /// Serves on a listener the caller already bound, e.g. to reserve the port up front.
    pub async fn start_with_listener(listener: TcpListener, config: LiveKitDoubleConfig) -> anyhow::Result<Self> {
        install_crypto_provider();
        let addr = listener.local_addr().context("reading the double's listen address")?;
        let sender = WebhookSender::new(&config.api_key, &config.api_secret)?;
        let (notifier, notifier_task) = webhook::Notifier::start(sender.clone(), config.webhook_url.clone());
        let shared = Arc::new(Shared {
            api_key: config.api_key,
            api_secret: config.api_secret,
            enable_remote_unmute: config.enable_remote_unmute,
            addr,
            store: Mutex::new(state::Store::default()),
            recorder: Mutex::new(recording::Recorder::default()),
            notifier,
            sender,
            rtc: rtc::RtcState::default(),
            failing: Mutex::default(),
        });
        let app = Router::new()
            .route("/twirp/{service}/{method}", any(twirp::handle))
            .route("/rtc", any(rtc::handle))
            .route("/rtc/validate", any(rtc::validate))
            .route("/rtc/v1", any(rtc::v1))
            .merge(control::routes())
            .with_state(Arc::clone(&shared));
        let (shutdown_tx, shutdown_rx) = oneshot::channel::<()>();
        let serve = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = shutdown_rx.await;
                })
                .await;
            if let Err(err) = result {
                tracing::error!(%err, "LiveKit double stopped serving");
            }
        });
        tracing::debug!(%addr, "LiveKit double listening");
        Ok(Self {
            shared,
            tasks: Some(Arc::new(Tasks {
                shutdown: Mutex::new(Some(shutdown_tx)),
                serve: Mutex::new(Some(serve)),
                notifier: notifier_task,
            })),
        })
    }

    /// A handle that does not keep the server alive, for the server's own handlers.
    pub(crate) fn handle(shared: Arc<Shared>) -> Self {
        Self { shared, tasks: None }
    }

    /// Stops accepting connections and waits for in-flight requests to finish.
    pub async fn shutdown(self) {
        let Some(tasks) = self.tasks else { return };
        if let Some(tx) = lock(&tasks.shutdown).take() {
            let _ = tx.send(());
        }
        let serve = lock(&tasks.serve).take();
        if let Some(serve) = serve {
            let _ = serve.await;
        }
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.addr
    }

    /// `http://127.0.0.1:PORT`, what confctl's `livekit.url`-style settings and `RoomClient` take.
    pub fn url(&self) -> String {
        format!("http://{}", self.shared.addr)
    }

    /// `ws://127.0.0.1:PORT`, the form LiveKit URLs usually have in config; the SDK maps it to http.
    pub fn ws_url(&self) -> String {
        format!("ws://{}", self.shared.addr)
    }

    pub fn api_key(&self) -> &str {
        &self.shared.api_key
    }

    pub fn api_secret(&self) -> &str {
        &self.shared.api_secret
    }

    /// The real SDK client, pointed at this double with the configured credentials.
    pub fn room_client(&self) -> RoomClient {
        RoomClient::with_api_key(&self.url(), &self.shared.api_key, &self.shared.api_secret)
    }

    /// A JWT signed with the configured credentials carrying exactly `grants`, for hand-made
    /// requests that test what a narrower token may do.
    pub fn token(&self, grants: VideoGrants) -> anyhow::Result<String> {
        AccessToken::with_api_key(&self.shared.api_key, &self.shared.api_secret)
            .with_grants(grants)
            .to_jwt()
            .context("signing a token for the LiveKit double")
    }

    // ---- state control: these bypass Twirp and are not recorded as calls ----

    /// Creates the room (or returns the existing one), as `CreateRoom` with defaults would.
    pub fn add_room(&self, name: &str) -> proto::Room {
        let changed = lock(&self.shared.store)
            .create_room(&proto::CreateRoomRequest { name: name.to_owned(), ..Default::default() });
        self.shared.emit(changed.events);
        changed.value
    }

    pub fn set_room_metadata(&self, name: &str, metadata: &str) -> Option<proto::Room> {
        lock(&self.shared.store).update_room_metadata(name, metadata).ok()
    }

    /// Closes the room as `DeleteRoom` would; `false` when there was no such room.
    pub fn remove_room(&self, name: &str) -> bool {
        let changed = lock(&self.shared.store).delete_room(name);
        match changed {
            Some(changed) => {
                self.shared.emit(changed.events);
                true
            }
            None => false,
        }
    }

    pub fn room(&self, name: &str) -> Option<proto::Room> {
        lock(&self.shared.store).room(name)
    }

    pub fn rooms(&self) -> Vec<proto::Room> {
        lock(&self.shared.store).list_rooms(&[])
    }

    /// Room names in sorted order.
    pub fn room_names(&self) -> Vec<String> {
        lock(&self.shared.store).room_names()
    }

    /// Simulates a participant joining: the room is auto-created like LiveKit does on join, an
    /// existing participant with the same identity is replaced, and `permission: None` means
    /// what a plain `roomJoin` token gives ([`default_join_permission`]).
    pub fn add_participant(
        &self,
        room: &str,
        identity: &str,
        name: &str,
        metadata: &str,
        permission: Option<proto::ParticipantPermission>,
    ) -> proto::ParticipantInfo {
        let changed = lock(&self.shared.store).add_participant(room, identity, name, metadata, permission);
        self.shared.emit(changed.events);
        changed.value
    }

    /// Simulates a participant leaving; `false` when there was no such participant.
    pub fn remove_participant(&self, room: &str, identity: &str) -> bool {
        let changed = lock(&self.shared.store).remove_participant(room, identity);
        match changed {
            Ok(changed) => {
                self.shared.emit(changed.events);
                true
            }
            Err(_) => false,
        }
    }

    pub fn participant(&self, room: &str, identity: &str) -> Option<proto::ParticipantInfo> {
        lock(&self.shared.store).participant(room, identity).ok()
    }

    /// Participants in join order; empty for an unknown room.
    pub fn participants(&self, room: &str) -> Vec<proto::ParticipantInfo> {
        lock(&self.shared.store).participants(room)
    }

    /// Simulates the participant publishing a track, so `MutePublishedTrack` has a target.
    pub fn add_track(
        &self,
        room: &str,
        identity: &str,
        name: &str,
        kind: proto::TrackType,
        source: proto::TrackSource,
    ) -> anyhow::Result<proto::TrackInfo> {
        let track = proto::TrackInfo {
            r#type: kind as i32,
            name: name.to_owned(),
            source: source as i32,
            ..Default::default()
        };
        let changed = lock(&self.shared.store)
            .add_track(room, identity, track)
            .map_err(|m| anyhow::anyhow!("{}", m.message()))?;
        self.shared.emit(changed.events);
        Ok(changed.value)
    }

    /// Forgets all rooms, participants, recorded calls, sent data and webhook deliveries
    /// without announcing anything.
    /// Makes a RoomService method fail with 503 `unavailable` (`true`) or work again (`false`).
    pub fn fail_method(&self, method: &str, failing: bool) {
        let mut set = lock(&self.shared.failing);
        if failing {
            set.insert(method.to_owned());
        } else {
            set.remove(method);
        }
    }

    pub fn reset(&self) {
        lock(&self.shared.store).clear();
        lock(&self.shared.recorder).clear();
        self.shared.notifier.clear();
    }

    // ---- recording ----

    /// Every Twirp request so far, in arrival order, including rejected ones.
    pub fn calls(&self) -> Vec<RecordedCall> {
        lock(&self.shared.recorder).calls()
    }

    pub fn calls_for(&self, method: &str) -> Vec<RecordedCall> {
        lock(&self.shared.recorder).calls().into_iter().filter(|c| c.method == method).collect()
    }

    /// Clears recorded calls and recorded `SendData` payloads.
    pub fn clear_calls(&self) {
        lock(&self.shared.recorder).clear();
    }

    /// Accepted `SendData` payloads for `room`, oldest first, kept even after the room is gone.
    pub fn sent_data(&self, room: &str) -> Vec<SentData> {
        lock(&self.shared.recorder).sent_data(room)
    }

    // ---- webhooks ----

    /// Posts `event` to `url`, signed with the configured credentials exactly as LiveKit signs.
    pub async fn send_webhook(&self, url: &str, event: proto::WebhookEvent) -> anyhow::Result<WebhookDelivery> {
        self.send_webhook_with(url, event, WebhookTamper::None).await
    }

    /// Like [`send_webhook`](Self::send_webhook) but deliberately spoiled, for negative tests.
    pub async fn send_webhook_with(
        &self,
        url: &str,
        event: proto::WebhookEvent,
        tamper: WebhookTamper,
    ) -> anyhow::Result<WebhookDelivery> {
        let delivery = self.shared.sender.send_with(url, &event, tamper).await?;
        self.shared.notifier.record(delivery.clone());
        Ok(delivery)
    }

    /// Points automatic state-change webhooks somewhere else (or nowhere); useful when the
    /// receiver starts after the double and its port is only known then.
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.shared.notifier.set_url(url);
    }

    pub fn webhook_url(&self) -> Option<String> {
        self.shared.notifier.url()
    }

    /// Waits until every automatic webhook queued so far has been delivered or has failed.
    pub async fn flush_webhooks(&self) {
        self.shared.notifier.flush().await;
    }

    /// Every webhook POST made so far, automatic and explicit, oldest first.
    pub fn webhook_deliveries(&self) -> Vec<WebhookDelivery> {
        self.shared.notifier.deliveries()
    }
}
