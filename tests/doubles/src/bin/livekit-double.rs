//! Owns the `livekit-double` process entry point: argument parsing, the ready line on stdout, and shutdown on SIGTERM/SIGINT.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use confctl_doubles::{LiveKitDouble, LiveKitDoubleConfig};

const USAGE: &str = "usage: livekit-double [--listen ADDR] [--api-key KEY] [--api-secret SECRET] \
[--webhook-url URL] [--enable-remote-unmute]

  --listen ADDR           address to serve on (default 127.0.0.1:7880; port 0 picks one)
  --api-key KEY           API key tokens must be issued by (default devkey)
  --api-secret SECRET     secret tokens must be signed with (default secret)
  --webhook-url URL       announce room/participant changes to URL as signed webhooks
  --enable-remote-unmute  allow MutePublishedTrack to unmute (LiveKit's default is off)

Prints LIVEKIT_DOUBLE_URL=http://HOST:PORT on stdout once listening.";

#[derive(Debug)]
struct Args {
    listen: String,
    config: LiveKitDoubleConfig,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> anyhow::Result<Option<Args>> {
    let mut listen = "127.0.0.1:7880".to_owned();
    let mut config = LiveKitDoubleConfig::default();
    while let Some(arg) = args.next() {
        // Both `--flag value` and `--flag=value`, since scripts write either.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f.to_owned(), Some(v.to_owned())),
            _ => (arg, None),
        };
        let mut value = |name: &str| -> anyhow::Result<String> {
            match inline.clone() {
                Some(v) => Ok(v),
                None => args.next().with_context(|| format!("{name} needs a value")),
            }
        };
        match flag.as_str() {
            "--listen" => listen = value("--listen")?,
            "--api-key" => config.api_key = value("--api-key")?,
            "--api-secret" => config.api_secret = value("--api-secret")?,
            "--webhook-url" => config.webhook_url = Some(value("--webhook-url")?),
            "--enable-remote-unmute" => config.enable_remote_unmute = true,
            "-h" | "--help" => return Ok(None),
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    if config.api_key.is_empty() || config.api_secret.is_empty() {
        bail!("--api-key and --api-secret must not be empty");
    }
    Ok(Some(Args { listen, config }))
}

async fn wait_for_signal() -> anyhow::Result<()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("installing SIGTERM handler")?;
        tokio::select! {
            _ = term.recv() => {}
            result = tokio::signal::ctrl_c() => result.context("waiting for SIGINT")?,
        }
    }
    #[cfg(not(unix))]
    tokio::signal::ctrl_c().await.context("waiting for Ctrl-C")?;
    Ok(())
}

async fn run(args: Args) -> anyhow::Result<()> {
    // Resolved here rather than parsed, so `localhost:7880` works as well as an IP.
    let addr = tokio::net::lookup_host(&args.listen)
        .await
        .with_context(|| format!("--listen {:?} is not HOST:PORT", args.listen))?
        .next()
        .with_context(|| format!("--listen {:?} resolved to no address", args.listen))?;
    let double = LiveKitDouble::start_on(addr, args.config).await?;
    // Test harnesses block on this exact line to learn the port, so it must be whole and flushed.
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "LIVEKIT_DOUBLE_URL={}", double.url()).context("writing ready line")?;
    stdout.flush().context("flushing ready line")?;
    drop(stdout);
    wait_for_signal().await?;
    double.shutdown().await;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(err) => {
            eprintln!("livekit-double: {err:#}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("livekit-double: {err:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> anyhow::Result<Option<Args>> {
        parse_args(args.iter().map(|s| (*s).to_owned()))
    }

    #[test]
    fn parses_both_flag_styles() {
        let args = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--api-key=k",
            "--api-secret",
            "s",
            "--webhook-url",
            "http://127.0.0.1:9/hook",
        ])
        .unwrap()
        .unwrap();
        assert_eq!(args.listen, "127.0.0.1:0");
        assert_eq!(args.config.api_key, "k");
        assert_eq!(args.config.api_secret, "s");
        assert_eq!(args.config.webhook_url.as_deref(), Some("http://127.0.0.1:9/hook"));
    }

    #[test]
    fn rejects_unknown_and_incomplete_flags() {
        assert!(parse(&["--bogus"]).is_err());
        assert!(parse(&["--api-key"]).is_err());
        assert!(parse(&["--help"]).unwrap().is_none());
    }
}
