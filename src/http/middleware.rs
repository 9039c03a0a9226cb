//! Request-wide layers: client address, access restrictions (allowed networks, development access key),
//! CSRF checks on cookie-authenticated writes, security headers, and one log line (and count) per request.

use std::net::SocketAddr;
use std::time::Instant;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::error::error_response;
use super::extract::ClientIp;
use crate::app::App;

/// Paths that stay reachable whatever the access restrictions: health checks for monitoring, and the
/// LiveKit webhook, which carries its own signature.
fn is_exempt(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/api/webhooks/livekit")
}

const DEV_COOKIE: &str = "confctl_dev_access";

/// Resolves the client address (trusting X-Forwarded-For only from configured proxies), then enforces
/// `allowed_ips` and the development access key.
pub async fn access(State(app): State<App>, mut req: Request, next: Next) -> Response {
    let ip = resolve_client_ip(&app, &req);
    if let Some(ip) = ip {
        req.extensions_mut().insert(ClientIp(ip));
    }
    let path = req.uri().path().to_owned();
    if is_exempt(&path) {
        return next.run(req).await;
    }
    if let Some(ip) = ip {
        if !crate::net::is_allowed(ip, &app.config().allowed_ips) {
            return error_response(StatusCode::FORBIDDEN, "ip_not_allowed", "this server is not open to your network");
        }
    }
    let Some(key) = app.config().effective_dev_access_key() else {
        return next.run(req).await;
    };
    let expected_cookie = dev_cookie_value(key.expose());
    let has_cookie = super::extract::cookie(req.headers(), DEV_COOKIE)
        .is_some_and(|v| bool::from(v.as_bytes().ct_eq(expected_cookie.as_bytes())));
    if has_cookie {
        return next.run(req).await;
    }
    let query = req.uri().query().unwrap_or_default().to_owned();
    let given = url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "key").map(|(_, v)| v.into_owned());
    match given {
        Some(given) if bool::from(given.as_bytes().ct_eq(key.expose().as_bytes())) => {
            let cookie = format!("{DEV_COOKIE}={expected_cookie}; Path=/; HttpOnly; SameSite=Lax; Max-Age=2592000");
            // A page visit is redirected to the same URL without the key, so it does not stay in the history.
            let mut response = if req.method() == Method::GET && !path.starts_with("/api/") {
                let rest: Vec<(String, String)> = url::form_urlencoded::parse(query.as_bytes())
                    .filter(|(k, _)| k != "key")
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect();
                let mut target = path.clone();
                if !rest.is_empty() {
                    target.push('?');
                    target.push_str(&url::form_urlencoded::Serializer::new(String::new()).extend_pairs(rest).finish());
                }
                Redirect::to(&target).into_response()
            } else {
                next.run(req).await
            };
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        _ => error_response(
            StatusCode::UNAUTHORIZED,
            "dev_access_required",
            "this development server needs its access key: open the link with ?key=… that the operator gave you",
        ),
    }
}

fn resolve_client_ip(app: &App, req: &Request) -> Option<std::net::IpAddr> {
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())?;
    let forwarded = req.headers().get("x-forwarded-for").and_then(|v| v.to_str().ok());
    Some(crate::net::client_ip(peer, forwarded, &app.config().trusted_proxies))
}

fn dev_cookie_value(key: &str) -> String {
    let digest = Sha256::digest(format!("confctl-dev-access:{key}").as_bytes());
    crate::ids::hex(&digest)
}

/// Refuses cross-site state-changing requests that would ride on a browser's session cookie.
pub async fn csrf(State(app): State<App>, req: Request, next: Next) -> Response {
    let safe = matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let has_session_cookie = super::extract::cookie(req.headers(), super::session_cookie_name(app.config())).is_some();
    if safe || !has_session_cookie || same_origin(&app, &req) {
        return next.run(req).await;
    }
    error_response(StatusCode::FORBIDDEN, "csrf_rejected", "cross-site request refused")
}

fn same_origin(app: &App, req: &Request) -> bool {
    let headers = req.headers();
    if let Some(site) = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok()) {
        return matches!(site, "same-origin" | "none");
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Browsers send Origin (or Sec-Fetch-Site) on every cross-site POST; a request with neither is not
        // from a browser page and carries no ambient-authority risk.
        return true;
    };
    if let Some(public) = &app.config().public_url {
        if origin == public.origin().ascii_serialization() {
            return true;
        }
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default();
    let origin_host = origin.split_once("://").map(|(_, h)| h).unwrap_or_default();
    !host.is_empty() && origin_host.eq_ignore_ascii_case(host)
}

/// Headers every response carries.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let is_api = req.uri().path().starts_with("/api/");
    let mut response = next.run(req).await;
    let headers = response.headers_mut();
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert("x-frame-options", HeaderValue::from_static("DENY"));
    if is_api && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// One log line per request: method, path (never the query, which may carry keys), status and latency; and
/// the request counted for the monitor's requests per second.
pub async fn request_log(State(app): State<App>, req: Request, next: Next) -> Response {
    app.traffic().count();
    let started = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let ip = resolve_client_ip(&app, &req).map(|ip| ip.to_string()).unwrap_or_default();
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        tracing::warn!(%method, %path, status, latency_ms, %ip, "request");
    } else {
        tracing::info!(%method, %path, status, latency_ms, %ip, "request");
    }
    response
}
