//! `confctl migrate`: apply pending migrations, or show them with `--status`.

use confctl::store::Store;

use super::{CmdResult, Failure, Global, init_logging};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// List applied and pending migrations without changing anything (exit 1 when some are pending).
    #[arg(long)]
    status: bool,
}

pub async fn run(global: &Global, args: Args) -> CmdResult {
    let config = global.load(Vec::new())?;
    init_logging(&config);
    std::fs::create_dir_all(&config.data_dir)
        .map_err(|e| anyhow::anyhow!("cannot create the data directory {}: {e}", config.data_dir.display()))?;
    let store = Store::connect(&config.effective_database_url()).await?;
    if args.status {
        let status = store.migration_status().await?;
        println!("database: {}", status.dialect.name());
        println!("{:<8} {:<28} APPLIED", "VERSION", "NAME");
        for m in &status.migrations {
            let applied =
                m.applied_at.map_or_else(|| "pending".to_owned(), |at| confctl::time::to_datetime(at).to_rfc3339());
            println!("{:<8} {:<28} {applied}", m.version, m.name);
        }
        for v in &status.unknown {
            println!("{v:<8} {:<28} applied by a newer confctl", "(unknown)");
        }
        store.close().await;
        if !status.unknown.is_empty() {
            return Err(Failure { message: "the database is newer than this confctl".into(), exit_code: 1 });
        }
        if status.pending() > 0 {
            return Err(Failure { message: format!("{} migration(s) pending", status.pending()), exit_code: 1 });
        }
        return Ok(());
    }
    let ran = store.migrate().await?;
    store.close().await;
    println!("applied {ran} migration(s); schema version {}", confctl::store::migrations::latest_version());
    Ok(())
}
