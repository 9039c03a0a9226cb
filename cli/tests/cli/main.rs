//! The real `confctl` binary driven as operators and scripts drive it (`cargo test -p confctl-cli`), one test
//! binary: one module per area; `support` starts the binary isolated from the developer's environment.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

mod admin_rooms;
mod admission_kill;
mod commands;
mod docs;
mod export;
mod export_drive;
mod monitor_tmux;
mod own_postgres;
mod replicas_faults;
mod serve_systemd;
