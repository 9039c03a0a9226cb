//! `confctl doctor`: one line per check, a hint for each problem, `--json` for monitoring.

use confctl::doctor::{self, Verdict};

use super::{CmdResult, Failure, Global, print_json};

#[derive(Debug, clap::Args)]
#[command(after_help = "Exit status: 0 when every check passes (warnings included), 1 when any fails.\n\
Example for monitoring:  confctl doctor --json | jq '.[] | select(.verdict != \"ok\")'")]
pub struct Args {
    /// Print the checks as a JSON array instead of text.
    #[arg(long)]
    json: bool,
}

pub async fn run(global: &Global, args: Args) -> CmdResult {
    let config = global.try_load(Vec::new());
    let mut checks = vec![doctor::config_check(&config)];
    if let Ok(config) = &config {
        checks.extend(doctor::run(config).await);
    }
    if args.json {
        print_json(&checks)?;
    } else {
        for check in &checks {
            let mark = match check.verdict {
                Verdict::Ok => "ok  ",
                Verdict::Warn => "warn",
                Verdict::Fail => "FAIL",
            };
            println!("{mark}  {:<12} {}", check.name, check.message);
            if let Some(hint) = &check.hint {
                println!("      {:<12} hint: {hint}", "");
            }
        }
    }
    let failed = checks.iter().filter(|c| c.verdict == Verdict::Fail).count();
    if failed > 0 {
        return Err(Failure { message: format!("{failed} check(s) failed"), exit_code: 1 });
    }
    Ok(())
}
