//! confctl's integration tests, one binary (`cargo test --test api`): the real server on port 0 with a fresh
//! database per test (SQLite, and PostgreSQL when `TEST_DATABASE_URL` names one), driven over HTTP like a
//! browser; the assistant's media and speech path; TLS; the store. One module per area; the harness they
//! share is `support`. Tests that need a server `cargo test` does not start (PostgreSQL, S3, pebble,
//! Whisper, livekit-server) ask `support::require` first and are skipped, saying so, when it is missing;
//! `scripts/test` starts them all.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod support;

mod access;
mod admin_monitor;
mod admin_tokens;
mod agent_api;
mod agent_audio;
mod agent_e2e;
mod agent_in_process;
mod agent_settings;
mod agent_stt;
mod agent_summary;
mod auth;
mod backup;
mod docs;
mod doctor;
mod files;
mod gdrive;
mod lecture_migration;
mod lectures;
mod livekit_agent;
mod livekit_moderation;
mod livekit_real;
mod moderation;
mod monitor_header;
mod replicas;
mod rooms;
mod security;
mod settings;
mod store;
mod tls_acme;
mod tls_files;
