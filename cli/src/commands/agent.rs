//! `confctl agent`: the AI assistant worker, until SIGTERM.

use confctl::server::shutdown_signal;
use toml::Value;

use super::{CmdResult, Failure, Global, init_logging};

#[derive(Debug, clap::Args)]
#[command(
    long_about = "Run the AI assistant: it joins every lecture that has the assistant on as a hidden, listen-only \
participant, posts live captions of every speaker, and when the lecture ends writes its transcript and summary. \
It needs only the confctl server's URL and an agent token (confctl admin agent-token create), so it can run on \
another machine. Several may run, each taking a share of the rooms ([agent] shard).",
    after_help = "Examples:\n  \
confctl agent --server-url https://lectures.example.edu     # token: CONFCTL_AGENT__TOKEN_FILE\n  \
CONFCTL_AGENT__STT_URL=http://gpu-box:8000/v1 confctl agent   # a self-hosted Whisper\n  \
confctl agent --stt deepgram                                # needs [agent] deepgram_api_key\n  \
confctl agent --shard 2/3                                   # the second of three workers"
)]
pub struct Args {
    /// The confctl server to work for [config: agent.server_url].
    #[arg(long, value_name = "URL")]
    server_url: Option<String>,
    /// Speech to text: whisper (any OpenAI-compatible server) or deepgram [config: agent.stt_provider].
    #[arg(long, value_name = "PROVIDER")]
    stt: Option<String>,
    /// This worker's share of rooms, K/N [config: agent.shard].
    #[arg(long, value_name = "K/N")]
    shard: Option<String>,
}

pub async fn run(global: &Global, args: Args) -> CmdResult {
    let text = |key: &str, value: String, flag: &str| (key.to_owned(), Value::String(value), flag.to_owned());
    let mut extra = Vec::new();
    extra.extend(args.server_url.map(|v| text("agent.server_url", v, "--server-url")));
    extra.extend(args.stt.map(|v| text("agent.stt_provider", v, "--stt")));
    extra.extend(args.shard.map(|v| text("agent.shard", v, "--shard")));
    let config = global.load(extra)?;
    if config.agent.token.as_ref().is_none_or(|t| t.is_empty()) {
        return Err(Failure::usage(
            "no agent token: create one on the confctl server with `confctl admin agent-token create --name NAME` \
             and set [agent] token (or CONFCTL_AGENT__TOKEN_FILE)",
        ));
    }
    init_logging(&config);
    // Handlers first: the worker reports readiness to systemd, and a stop must find them installed.
    let stop = shutdown_signal();
    confctl::agent::run(&config, async move {
        stop.await;
        confctl::systemd::notify_stopping();
    })
    .await?;
    Ok(())
}
