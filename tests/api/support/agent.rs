//! The assistant's worker (what `confctl agent` runs) inside the test process: it learns of a test instance's
//! lectures, joins them and transcribes with the Whisper server (`require(&[Service::Whisper])` first).

use std::sync::Arc;
use std::time::Duration;

use confctl::agent::Agent;
use confctl::agent::api::AgentApi;
use confctl::config::{self, Sources};
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
    pub async fn start(t: &TestApp) -> Self {
        let (_, token) =
            confctl::accounts::agent_tokens::create(&t.app, &confctl::audit::Actor::cli(), "test agent").await.unwrap();
        let env = vec![
            ("CONFCTL_AGENT__STT_URL".to_owned(), speech::stt_url()),
            // webrtc-rs gathers no loopback candidates on a wildcard address.
            ("CONFCTL_AGENT__WEBRTC_UDP_ADDR".to_owned(), "127.0.0.1:0".to_owned()),
        ];
        let config = config::load(&Sources { env, ..Sources::default() }).unwrap();
        assert!(config.agent.llm_url.is_none(), "no LLM configured: the extractive summariser");
        let api = AgentApi::new(&t.base.parse().unwrap(), Secret::new(token)).unwrap();
        let agent = Arc::new(Agent::new(&config.agent, api).unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(confctl::agent::worker::run(agent, async move {
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
