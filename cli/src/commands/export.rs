//! `confctl export`.

use super::{CmdResult, Global, not_available};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_global: &Global, _args: Args) -> CmdResult {
    Err(not_available("confctl export", "lecture artifacts are still being built"))
}
