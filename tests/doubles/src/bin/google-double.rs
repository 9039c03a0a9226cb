//! Owns the `google-double` process entry point for the browser tests: Google's OAuth endpoints and Drive v3
//! (see `confctl_doubles::gdrive`) on a loopback port, for a confctl whose callback is `--redirect-uri`.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use confctl_doubles::{GoogleDouble, GoogleDoubleConfig};

const USAGE: &str = "usage: google-double --redirect-uri URI

  --redirect-uri URI   the registered redirect URI: confctl's <public_url>/auth/google/callback

Prints the confctl settings that point at the double (CONFCTL_GOOGLE__…=…), one per line, then
GOOGLE_DOUBLE_URL=http://127.0.0.1:PORT once listening. Runs until killed.";

async fn run(redirect_uri: &str) -> anyhow::Result<()> {
    let double = GoogleDouble::start(GoogleDoubleConfig::new(redirect_uri)).await?;
    // Harnesses block on the last line to learn the settings, so every line must be whole and flushed.
    let mut stdout = std::io::stdout().lock();
    for (key, value) in double.settings() {
        writeln!(stdout, "CONFCTL_{}={value}", key.replace('.', "__").to_ascii_uppercase())
            .context("writing settings")?;
    }
    writeln!(stdout, "GOOGLE_DOUBLE_URL={}", double.url()).context("writing the ready line")?;
    stdout.flush().context("flushing the ready line")?;
    drop(stdout);
    // SIGTERM's default action ends the process, which is all the harness asks for.
    std::future::pending::<()>().await;
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let redirect = match args.as_slice() {
        [flag, uri] if flag == "--redirect-uri" => uri.clone(),
        [flag] if flag.starts_with("--redirect-uri=") => flag["--redirect-uri=".len()..].to_owned(),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&redirect).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("google-double: {err:#}");
            ExitCode::FAILURE
        }
    }
}
