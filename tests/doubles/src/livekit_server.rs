//! Not a double: starting the real `livekit-server` (built by `scripts/livekit-server`) on loopback, one way
//! for the integration tests (`tests/api/support/livekit.rs`) and the load benchmark
//! (`benches/livekit_load.rs`). Callers choose the ports (free at start) and retry on a clash.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The ports one server listens on: its API and signalling (`port`), and media over TCP and UDP.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub api: u16,
    pub tcp: u16,
    pub udp: u16,
}

/// The configuration of a loopback server whose webhooks go to `webhook_url`, signed with `key`.
///
/// LiveKit hands clients public STUN servers unless told others: they point at the server itself, so no
/// client looks anything up outside this machine — the TCP port's number, on UDP, where nobody answers
/// (loopback host candidates need no STUN; STUN sent to LiveKit's own UDP port makes the assistant's
/// webrtc-rs ICE fail). Its UDP media socket leaves out loopback unless told, and would sit on the
/// machine's other addresses: loopback only. Logging at `info`, where LiveKit says what became of each
/// webhook ("sent webhook", "failed to send webhook", "dropped webhook").
pub fn config(ports: Ports, key: &str, secret: &str, webhook_url: &str) -> String {
    let Ports { api, tcp, udp } = ports;
    format!(
        "port: {api}\n\
         bind_addresses: [\"127.0.0.1\"]\n\
         rtc:\n  tcp_port: {tcp}\n  udp_port: {udp}\n  use_external_ip: false\n  node_ip: 127.0.0.1\n\
         \x20 stun_servers: [\"127.0.0.1:{tcp}\"]\n\
         \x20 enable_loopback_candidate: true\n  ips:\n    includes: [\"127.0.0.1/32\"]\n\
         keys:\n  {key}: {secret}\n\
         webhook:\n  api_key: {key}\n  urls: [\"{webhook_url}\"]\n\
         logging:\n  level: info\n"
    )
}

/// Writes `config` to `dir/livekit.yaml`, starts `bin` with it (output to `dir/livekit.log`) and waits up to
/// 20 s for its API on `api_port` to answer `OK`. On failure the server is stopped and the error holds its log.
pub async fn start(bin: &Path, dir: &Path, config: &str, api_port: u16) -> Result<Child, String> {
    let config_path = dir.join("livekit.yaml");
    let log_path = dir.join("livekit.log");
    let log_of = || std::fs::read_to_string(&log_path).unwrap_or_default();
    std::fs::write(&config_path, config).map_err(|e| format!("cannot write {}: {e}", config_path.display()))?;
    let log = std::fs::File::create(&log_path).map_err(|e| format!("cannot create {}: {e}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new(bin)
        .arg("--config")
        .arg(&config_path)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", bin.display()))?;
    let url = format!("http://127.0.0.1:{api_port}");
    let client = reqwest::Client::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while tokio::time::Instant::now() < deadline {
        if let Ok(response) = client.get(&url).send().await
            && response.text().await.is_ok_and(|t| t == "OK")
        {
            return Ok(child);
        }
        if child.try_wait().map_err(|e| e.to_string())?.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    Err(log_of())
}
