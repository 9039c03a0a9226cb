//! The assistant's worker (what `confctl agent` runs) inside the test process: it learns of a test instance's
//! lectures, joins them and transcribes with the Whisper server (`require(&[Service::Whisper])` first), or
//! summarises with a chat-model double.

use std::sync::Arc;
use std::time::Duration;

use confctl::agent::Agent;
use confctl::agent::api::AgentApi;
use confctl::agent::summary::Summariser;
use confctl::agent::summary::llm::LlmSummariser;
use confctl::config::{self, Config, Sources};
use confctl::secret::Secret;
use tokio::sync::oneshot;

use crate::support::TestApp;
use crate::support::speech;

/// A worker running against one test instance, with an agent token of its own.
pub struct RunningAgent {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl RunningAgent {
    /// A worker that transcribes with the Whisper server and summarises with the built-in summariser.
    pub async fn start(t: &TestApp) -> Self {
        let env = vec![("CONFCTL_AGENT__STT_URL".to_owned(), speech::stt_url())];
        let (config, api) = Self::configured(t, env).await;
        assert!(config.agent.llm_url.is_none(), "no LLM configured: the extractive summariser");
        Self::spawn(Agent::new(&config.agent, api).unwrap())
    }

    /// A worker that summarises with the chat model at `llm_url` (`gpt-4o-mini`, retrying without pauses);
    /// its speech to text is never used (no audio is played).
    pub async fn with_llm(t: &TestApp, llm_url: &str) -> Self {
        let env = vec![
            ("CONFCTL_AGENT__LLM_URL".to_owned(), llm_url.to_owned()),
            ("CONFCTL_AGENT__LLM_MODEL".to_owned(), "gpt-4o-mini".to_owned()),
        ];
        let (config, api) = Self::configured(t, env).await;
        let fast = LlmSummariser::new(&llm_url.parse().unwrap(), "gpt-4o-mini".into(), None)
            .unwrap()
            .with_limits(24_000, Duration::from_millis(10));
        Self::spawn(Agent::new(&config.agent, api).unwrap().with_summariser(Summariser::Llm(fast)))
    }

    /// The configuration from `env` and an agent token of its own.
    async fn configured(t: &TestApp, mut env: Vec<(String, String)>) -> (Config, AgentApi) {
        let (_, token) =
            confctl::accounts::agent_tokens::create(&t.app, &confctl::audit::Actor::cli(), "test agent").await.unwrap();
        // webrtc-rs gathers no loopback candidates on a wildcard address.
        env.push(("CONFCTL_AGENT__WEBRTC_UDP_ADDR".to_owned(), "127.0.0.1:0".to_owned()));
        let config = config::load(&Sources { env, ..Sources::default() }).unwrap();
        let api = AgentApi::new(&t.base.parse().unwrap(), Secret::new(token)).unwrap();
        (config, api)
    }

    fn spawn(agent: Agent) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(confctl::agent::worker::run(Arc::new(agent), async move {
            let _ = stopped.await;
        }));
        Self { stop: Some(stop), task }
    }

    /// Stops the worker and waits for it to finish what it was doing (up to a minute).
    pub async fn stop(mut self) {
        let _ = self.stop.take().unwrap().send(());
        tokio::time::timeout(Duration::from_secs(60), self.task).await.unwrap().unwrap();
    }
}
