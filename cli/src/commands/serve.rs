//! `confctl serve`.

use std::net::SocketAddr;

use confctl::server::{ServeOptions, Server, shutdown_signal};
use toml::Value;

use super::{CmdResult, Global, init_logging};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  confctl serve                               # http://127.0.0.1:8080, SQLite in ./confctl-data\n  \
confctl serve --listen 0.0.0.0:8080 --data-dir /var/lib/confctl\n  \
confctl serve --database-url postgres://confctl:PASSWORD@db/confctl"
)]
pub struct Args {
    /// Address and port for plain HTTP [config: listen].
    #[arg(long, value_name = "ADDR:PORT")]
    listen: Option<SocketAddr>,
    /// Public DNS name of this server; repeat for several [config: domains].
    #[arg(long = "domain", value_name = "NAME")]
    domains: Vec<String>,
    /// Do not apply database migrations at start; refuse to start if any are pending.
    #[arg(long)]
    no_migrate: bool,
}

pub async fn run(global: &Global, args: Args) -> CmdResult {
    let mut extra = Vec::new();
    if let Some(listen) = args.listen {
        extra.push(("listen".into(), Value::String(listen.to_string()), "--listen".into()));
    }
    if !args.domains.is_empty() {
        let list = args.domains.iter().cloned().map(Value::String).collect();
        extra.push(("domains".into(), Value::Array(list), "--domain".into()));
    }
    let config = global.load(extra)?;
    init_logging(&config);
    let server = Server::bind(config, &ServeOptions { no_migrate: args.no_migrate }).await?;
    let addr = server.local_addr().map_err(anyhow::Error::from)?;
    tracing::info!(%addr, data_dir = %server.app().config().data_dir.display(), database = server.app().store().dialect().name(), "confctl is listening on http://{addr}");
    server.run(shutdown_signal()).await?;
    Ok(())
}
