//! Service-manager notifications (sd_notify): readiness, status text and stopping. Each call is a no-op
//! when the process was not started by systemd with `Type=notify` (no NOTIFY_SOCKET).

use sd_notify::NotifyState;

/// Tells systemd the service is up (its listeners accept connections), with a one-line status.
pub fn notify_ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// Tells systemd a graceful shutdown has begun, so `systemctl status` shows it while requests drain.
pub fn notify_stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("shutting down: finishing in-flight requests")]);
}

fn send(states: &[NotifyState<'_>]) {
    if let Err(err) = sd_notify::notify(states) {
        tracing::warn!(error = %err, "could not notify systemd (NOTIFY_SOCKET)");
    }
}
