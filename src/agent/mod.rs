//! The AI assistant (`confctl agent`, or in-process with `confctl serve --with-agent`): joins lectures as a
//! hidden LiveKit participant, captions every speaker live and summarises the lecture when it ends. It talks
//! only to confctl's agent API (`docs/agent-api.md`), never to the database or LiveKit's server API, so it can
//! run on another machine (next to a GPU) with a URL and an agent token.

pub mod api;
pub mod audio;
pub mod session;
pub mod stt;
pub mod summary;
pub mod transcript;
pub mod vad;
pub mod worker;

use std::net::SocketAddr;
use std::sync::Arc;

use crate::config::{AgentConfig, Config};

/// Everything a worker shares between its rooms.
pub struct Agent {
    pub(crate) api: api::AgentApi,
    pub(crate) stt: Arc<dyn stt::SpeechToText>,
    pub(crate) summariser: summary::Summariser,
    pub(crate) udp_addr: SocketAddr,
    /// This worker's share of rooms: (K, N).
    shard: (u32, u32),
}

impl std::fmt::Debug for Agent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Agent").field("stt", &self.stt.provider()).field("shard", &self.shard).finish_non_exhaustive()
    }
}

impl Agent {
    /// A worker for the confctl server behind `api`, configured by `[agent]`.
    pub fn new(config: &AgentConfig, api: api::AgentApi) -> anyhow::Result<Self> {
        Ok(Self {
            api,
            stt: stt::from_config(config)?,
            summariser: summary::Summariser::from_config(config)?,
            udp_addr: config.webrtc_udp_addr,
            shard: config.shard().unwrap_or((1, 1)),
        })
    }

    /// Uses another speech-to-text provider than the configured one.
    #[must_use]
    pub fn with_stt(mut self, stt: Arc<dyn stt::SpeechToText>) -> Self {
        self.stt = stt;
        self
    }

    /// Uses another summariser than the configured one.
    #[must_use]
    pub fn with_summariser(mut self, summariser: summary::Summariser) -> Self {
        self.summariser = summariser;
        self
    }

    /// What fails for every room of this worker right now (speech to text), if anything.
    pub(crate) fn problem(&self) -> Option<String> {
        self.stt.health().and_then(stt::Health::problem)
    }

    /// Whether this worker takes the room (`shard = "K/N"`): by a stable hash of its id.
    pub fn takes(&self, room_id: &str) -> bool {
        let (k, n) = self.shard;
        // FNV-1a: stable across processes and versions, unlike the standard library's hasher.
        let hash =
            room_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3));
        hash % u64::from(n.max(1)) == u64::from(k.saturating_sub(1))
    }
}

/// `confctl agent`: the worker against `[agent] server_url` with `[agent] token`, until `shutdown`.
pub async fn run(config: &Config, shutdown: impl std::future::Future<Output = ()>) -> anyhow::Result<()> {
    crate::tls_provider();
    let token = config.agent.token.clone().filter(|t| !t.is_empty()).ok_or_else(|| {
        anyhow::anyhow!(
            "no agent token: create one with `confctl admin agent-token create --name NAME` on the confctl server \
             and set [agent] token (or CONFCTL_AGENT__TOKEN_FILE)"
        )
    })?;
    let api = api::AgentApi::new(&config.agent.server_url, token)?;
    let agent = Agent::new(&config.agent, api)?;
    tracing::info!(server = %config.agent.server_url, stt = agent.stt.provider(), "the AI assistant is running");
    crate::systemd::notify_ready(&format!("captioning lectures of {}", config.agent.server_url));
    worker::run(Arc::new(agent), shutdown).await;
    Ok(())
}

/// A finished lecture's artifact from what confctl stored: the transcript as text and WebVTT, and a summary
/// as the AI settings in the context ask (none when summaries are off). Shared by the worker and the server's
/// `artifacts::resummarize`.
pub async fn artifact_for(summariser: &summary::Summariser, context: &api::Context, language: &str) -> api::Artifact {
    let segments = transcript::ordered(&context.segments);
    let transcript_text = transcript::to_text(&segments);
    let transcript_vtt = transcript::to_vtt(&segments);
    if !context.settings.enabled {
        return api::Artifact {
            transcript_text,
            transcript_vtt,
            summary: None,
            summary_kind: None,
            provider: None,
            model: None,
            status: api::ArtifactStatus::Complete,
            error: None,
        };
    }
    let extras = summary::Extras { title: context.lecture.name.clone(), speakers: context.speakers.clone() };
    let language = if context.lecture.language.is_empty() { language } else { context.lecture.language.as_str() };
    let outcome = summariser.for_settings(&context.settings).summarise(&segments, &extras, language).await;
    api::Artifact {
        transcript_text,
        transcript_vtt,
        summary: outcome.summary.as_ref().and_then(|s| serde_json::to_value(s).ok()),
        summary_kind: outcome.kind.map(str::to_owned),
        provider: Some(outcome.provider),
        model: Some(outcome.model),
        status: if outcome.error.is_none() { api::ArtifactStatus::Complete } else { api::ArtifactStatus::Failed },
        error: outcome.error,
    }
}
