//! `confctl generate`: man pages and shell completion scripts, made from the command-line definition itself
//! so they never drift from it (the Debian package ships both).

use std::path::PathBuf;

use clap::{CommandFactory, Subcommand, ValueEnum};

use super::{CmdResult, Failure};
use crate::Cli;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: GenerateCommand,
}

#[derive(Debug, Subcommand)]
enum GenerateCommand {
    /// Write man pages: confctl(1) and one page per subcommand, such as confctl-serve(1).
    #[command(after_help = "Examples:\n  confctl generate man | man -l -\n  confctl generate man --out-dir target/man")]
    Man {
        /// Write every page into this directory (created if missing) instead of confctl(1) to standard output.
        #[arg(long, value_name = "DIR")]
        out_dir: Option<PathBuf>,
    },
    /// Print a completion script for a shell.
    #[command(
        after_help = "Examples:\n  confctl generate completions bash > /usr/share/bash-completion/completions/confctl\n  \
confctl generate completions zsh > /usr/share/zsh/vendor-completions/_confctl\n  \
confctl generate completions fish > /usr/share/fish/vendor_completions.d/confctl.fish"
    )]
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Shell {
    Bash,
    Zsh,
    Fish,
}

pub fn run(args: Args) -> CmdResult {
    let write_failed =
        |what: &str, err: std::io::Error| Failure { message: format!("cannot write {what}: {err}"), exit_code: 1 };
    match args.command {
        GenerateCommand::Man { out_dir: Some(dir) } => {
            std::fs::create_dir_all(&dir).map_err(|e| write_failed(&dir.display().to_string(), e))?;
            clap_mangen::generate_to(Cli::command(), &dir)
                .map_err(|e| write_failed(&format!("man pages to {}", dir.display()), e))
        }
        GenerateCommand::Man { out_dir: None } => clap_mangen::Man::new(Cli::command())
            .render(&mut std::io::stdout().lock())
            .map_err(|e| write_failed("the man page", e)),
        GenerateCommand::Completions { shell } => {
            let shell = match shell {
                Shell::Bash => clap_complete::Shell::Bash,
                Shell::Zsh => clap_complete::Shell::Zsh,
                Shell::Fish => clap_complete::Shell::Fish,
            };
            clap_complete::generate(shell, &mut Cli::command(), "confctl", &mut std::io::stdout().lock());
            Ok(())
        }
    }
}
