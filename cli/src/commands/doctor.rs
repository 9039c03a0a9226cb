//! `confctl doctor`.

use super::{CmdResult, Global, not_available};

#[derive(Debug, clap::Args)]
pub struct Args {}

pub async fn run(_global: &Global, _args: Args) -> CmdResult {
    Err(not_available("confctl doctor", "the health checks are still being built"))
}
