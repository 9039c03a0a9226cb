//! The plain-HTTP listener of a TLS-enabled instance: every request is answered with a permanent redirect
//! to the same path over HTTPS, and nothing else is served in the clear.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};

#[derive(Debug)]
struct Target {
    /// The configured names, lower-case; a request for any other host goes to the first of them.
    domains: Vec<String>,
    https_port: u16,
}

pub(super) fn router(domains: &[String], https_port: u16) -> Router {
    let domains = domains.iter().map(|d| d.to_ascii_lowercase()).collect();
    Router::new().fallback(redirect).with_state(Arc::new(Target { domains, https_port }))
}

async fn redirect(State(target): State<Arc<Target>>, headers: HeaderMap, uri: Uri) -> Response {
    let requested = headers.get(header::HOST).and_then(|v| v.to_str().ok()).and_then(host_only);
    let host = match (requested, target.domains.first()) {
        (Some(host), Some(_)) if target.domains.contains(&host) => host,
        // Only configured names are redirect targets, so a forged Host header cannot send anyone elsewhere.
        (_, Some(first)) => first.clone(),
        (Some(host), None) => host,
        (None, None) => {
            return (StatusCode::BAD_REQUEST, "This server only answers over HTTPS.\n").into_response();
        }
    };
    let port = if target.https_port == 443 { String::new() } else { format!(":{}", target.https_port) };
    let path = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    Redirect::permanent(&format!("https://{host}{port}{path}")).into_response()
}

/// The host part of a Host header (no port), lower-case, if it is a plausible DNS name or IP literal.
fn host_only(value: &str) -> Option<String> {
    let host = if let Some(rest) = value.strip_prefix('[') {
        let end = rest.find(']')?;
        &value[..end + 2]
    } else {
        value.rsplit_once(':').map_or(value, |(host, _)| host)
    };
    let plausible = !host.is_empty()
        && host.len() <= 255
        && host.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    plausible.then(|| host.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::host_only;

    #[test]
    fn host_header_forms() {
        assert_eq!(host_only("Lectures.Example.edu").as_deref(), Some("lectures.example.edu"));
        assert_eq!(host_only("lectures.example.edu:80").as_deref(), Some("lectures.example.edu"));
        assert_eq!(host_only("[2001:db8::1]:8080").as_deref(), Some("[2001:db8::1]"));
        assert_eq!(host_only("evil.example/x"), None);
        assert_eq!(host_only(""), None);
    }
}
