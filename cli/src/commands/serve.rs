//! `confctl serve`.

use std::net::SocketAddr;
use std::path::PathBuf;

use confctl::server::{ServeOptions, Server, shutdown_signal};
use toml::Value;

use super::{CmdResult, Global, init_logging};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Examples:\n  confctl serve                               # http://127.0.0.1:8080, SQLite in ./confctl-data\n  \
confctl serve --listen 0.0.0.0:8080 --data-dir /var/lib/confctl\n  \
confctl serve --database-url postgres://confctl:PASSWORD@db/confctl\n  \
confctl serve --domain lectures.example.edu --acme-email ops@example.edu     # HTTPS, Let's Encrypt\n  \
confctl serve --domain lectures.example.edu --tls-cert chain.pem --tls-key key.pem"
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
    /// Also run the AI assistant (captions and summaries) in this process, for single-VM installs.
    #[arg(long)]
    with_agent: bool,
    /// Turn on HTTPS with certificates from ACME, using this contact address [config: tls.acme_email].
    #[arg(long, value_name = "EMAIL", help_heading = "HTTPS")]
    acme_email: Option<String>,
    /// Use Let's Encrypt's staging directory (untrusted test certificates) [config: tls.acme_staging].
    #[arg(long, help_heading = "HTTPS")]
    acme_staging: bool,
    /// ACME directory URL, e.g. a campus step-ca (default: Let's Encrypt) [config: tls.acme_directory].
    #[arg(long, value_name = "URL", help_heading = "HTTPS")]
    acme_directory: Option<String>,
    /// CA certificates (PEM) for the ACME directory's own HTTPS [config: tls.acme_ca_file].
    #[arg(long, value_name = "PATH", help_heading = "HTTPS")]
    acme_ca_file: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM) instead of ACME [config: tls.cert_file].
    #[arg(long, value_name = "PATH", help_heading = "HTTPS", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// Private key (PEM) for --tls-cert [config: tls.key_file].
    #[arg(long, value_name = "PATH", help_heading = "HTTPS", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Address and port for HTTPS [config: tls.listen; default [::]:443].
    #[arg(long, value_name = "ADDR:PORT", help_heading = "HTTPS")]
    tls_listen: Option<SocketAddr>,
    /// Address and port for the plain-HTTP redirect, or `off` [config: tls.redirect_listen; default [::]:80].
    #[arg(long, value_name = "ADDR:PORT|off", help_heading = "HTTPS")]
    tls_redirect_listen: Option<String>,
}

/// The `[tls]` flags as configuration overrides.
fn tls_flags(args: &Args) -> Vec<(String, Value, String)> {
    let text = |key: &str, value: String, flag: &str| (key.to_owned(), Value::String(value), flag.to_owned());
    let path = |p: &PathBuf| p.display().to_string();
    let mut flags = Vec::new();
    flags.extend(args.acme_email.clone().map(|v| text("tls.acme_email", v, "--acme-email")));
    if args.acme_staging {
        flags.push(("tls.acme_staging".into(), Value::Boolean(true), "--acme-staging".into()));
    }
    flags.extend(args.acme_directory.clone().map(|v| text("tls.acme_directory", v, "--acme-directory")));
    flags.extend(args.acme_ca_file.as_ref().map(|v| text("tls.acme_ca_file", path(v), "--acme-ca-file")));
    flags.extend(args.tls_cert.as_ref().map(|v| text("tls.cert_file", path(v), "--tls-cert")));
    flags.extend(args.tls_key.as_ref().map(|v| text("tls.key_file", path(v), "--tls-key")));
    flags.extend(args.tls_listen.map(|v| text("tls.listen", v.to_string(), "--tls-listen")));
    flags.extend(args.tls_redirect_listen.clone().map(|v| text("tls.redirect_listen", v, "--tls-redirect-listen")));
    flags
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
    extra.extend(tls_flags(&args));
    let sources = global.sources(extra);
    let config = confctl::config::load(&sources).map_err(super::Failure::from)?;
    init_logging(&config);
    let server = Server::bind(
        config,
        &ServeOptions { no_migrate: args.no_migrate, reload_from: Some(sources), with_agent: args.with_agent },
    )
    .await?;
    let addr = server.local_addr().map_err(anyhow::Error::from)?;
    let scheme = if server.app().config().tls.enabled() { "https" } else { "http" };
    tracing::info!(%addr, data_dir = %server.app().config().data_dir.display(), database = server.app().store().dialect().name(), "confctl is listening on {scheme}://{addr}");
    let stop = shutdown_signal();
    confctl::systemd::notify_ready(&format!("listening on {scheme}://{addr}"));
    server
        .run(async {
            stop.await;
            confctl::systemd::notify_stopping();
        })
        .await?;
    Ok(())
}
