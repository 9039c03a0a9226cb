//! What every page shares: who is asking and in which language (the [`PageCtx`] extractor), the layout's
//! data ([`Shell`]), the JSON handed to the page's script, and the headers every HTML response carries
//! (strict CSP, no caching, no referrer).

use askama::Template;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{Value, json};

use super::assets;
use crate::accounts::{self, User};
use crate::app::App;
use crate::config::Config;
use crate::http::extract::cookie;
use crate::i18n::{self, Catalogue, LANG_COOKIE, Lang};

/// The request as a page sees it.
#[derive(Debug, Clone)]
pub struct PageCtx {
    pub lang: Lang,
    /// Set when `?lang=` chose the language: the choice is remembered in a cookie.
    pub remember_lang: bool,
    pub user: Option<User>,
    /// The path (without query), for `?next=` and the language links.
    pub path: String,
    pub csp: String,
    pub public_instance: bool,
}

impl FromRequestParts<App> for PageCtx {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, app: &App) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let asked =
            url::form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == "lang").map(|(_, v)| v.into_owned());
        let accept = parts.headers.get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok());
        let lang = i18n::negotiate(asked.as_deref(), cookie(&parts.headers, LANG_COOKIE), accept);
        let remember_lang = asked.as_deref().and_then(Lang::parse).is_some();
        let token = cookie(&parts.headers, crate::http::session_cookie_name(app.config())).unwrap_or_default();
        let user = match accounts::authenticate(app, token).await {
            Ok(found) => found.map(|auth| auth.user),
            Err(err) => {
                tracing::error!(error = %err, "page: cannot check the session");
                let ctx = PageCtx {
                    lang,
                    remember_lang,
                    user: None,
                    path: parts.uri.path().to_owned(),
                    csp: csp(app.config()),
                    public_instance: app.config().is_public(),
                };
                return Err(error_page(
                    &ctx,
                    StatusCode::SERVICE_UNAVAILABLE,
                    "error.unavailable.title",
                    "error.unavailable.text",
                ));
            }
        };
        Ok(Self {
            lang,
            remember_lang,
            user,
            path: parts.uri.path().to_owned(),
            csp: csp(app.config()),
            public_instance: app.config().is_public(),
        })
    }
}

impl PageCtx {
    pub fn t(&self) -> &'static Catalogue {
        self.lang.catalogue()
    }

    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(User::is_admin)
    }

    /// Where to send someone who must sign in first, coming back here afterwards.
    pub fn sign_in_redirect(&self) -> Response {
        let next = url::form_urlencoded::Serializer::new(String::new()).append_pair("next", &self.path).finish();
        Redirect::to(&format!("/login?{next}")).into_response()
    }
}

/// The media server's origins (WebSocket and HTTP forms: livekit-client uses both), for `connect-src`.
fn livekit_origins(config: &Config) -> Vec<String> {
    let browser = config.livekit_browser_url();
    let Ok(url) = url::Url::parse(&browser) else { return Vec::new() };
    let origin = url.origin().ascii_serialization();
    if origin == "null" {
        return Vec::new();
    }
    let rest = origin.split_once("://").map(|(_, r)| r.to_owned()).unwrap_or_default();
    let secure = matches!(url.scheme(), "wss" | "https");
    let (ws, http) = if secure { ("wss", "https") } else { ("ws", "http") };
    vec![format!("{ws}://{rest}"), format!("{http}://{rest}")]
}

/// Where browsers upload and download shared files when they live in S3 (signed URLs point there).
fn storage_origins(config: &Config) -> Vec<String> {
    if config.files.backend != crate::config::StorageBackend::S3 {
        return Vec::new();
    }
    match &config.files.s3_endpoint {
        Some(endpoint) => {
            let origin = endpoint.origin().ascii_serialization();
            if origin == "null" { Vec::new() } else { vec![origin] }
        }
        // AWS itself: bucket and region hosts under one domain.
        None => vec!["https://*.amazonaws.com".to_owned()],
    }
}

/// The Content-Security-Policy of every page: nothing inline, nothing from elsewhere but the media server
/// (and the file store, when files live in S3).
pub fn csp(config: &Config) -> String {
    let mut connect = vec!["'self'".to_owned()];
    connect.extend(livekit_origins(config));
    connect.extend(storage_origins(config));
    format!(
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; \
         connect-src {}; font-src 'self'; object-src 'none'; worker-src 'self' blob:; frame-ancestors 'none'; \
         base-uri 'none'; form-action 'self'",
        connect.join(" ")
    )
}

/// The layout's data; every page template holds one as `s`.
#[derive(Debug)]
pub struct Shell {
    pub lang: Lang,
    pub title: String,
    pub user: Option<User>,
    /// Which navigation entry is current (`dashboard`, `admin`, …).
    pub nav: &'static str,
    /// The page's script (logical asset name), if any.
    pub script: Option<&'static str>,
    /// JSON for the page's script, already made safe to sit inside a `<script>` element.
    pub boot: String,
    pub path: String,
    /// Main content is full-bleed (the video room) rather than a centred column.
    pub wide: bool,
}

impl Shell {
    /// `page` is the title's catalogue key; `data` goes to the page script as `boot.data`.
    pub fn new(ctx: &PageCtx, title_key: &str, nav: &'static str, script: Option<&'static str>, data: Value) -> Self {
        let t = ctx.t();
        let title = format!("{} · confctl", t.get(title_key));
        let strings: serde_json::Map<String, Value> =
            t.entries().map(|(k, v)| (k.to_owned(), Value::String(v.to_owned()))).collect();
        let boot = json!({
            "lang": ctx.lang.code(),
            "user": ctx.user,
            "strings": strings,
            "data": data,
        });
        Self {
            lang: ctx.lang,
            title,
            user: ctx.user.clone(),
            nav,
            script,
            boot: script_safe_json(&boot),
            path: ctx.path.clone(),
            wide: false,
        }
    }

    pub fn wide(mut self) -> Self {
        self.wide = true;
        self
    }

    pub fn t<'a>(&self, key: &'a str) -> &'a str {
        self.lang.catalogue().get(key)
    }

    pub fn asset(&self, name: &str) -> String {
        assets::url(name)
    }

    pub fn lang_code(&self) -> &'static str {
        self.lang.code()
    }

    pub fn is_admin(&self) -> bool {
        self.user.as_ref().is_some_and(User::is_admin)
    }

    pub fn user_name(&self) -> &str {
        self.user.as_ref().map_or("", |u| u.name.as_str())
    }

    /// The other languages, as (code, own name) for the switcher.
    pub fn other_langs(&self) -> Vec<(&'static str, &'static str)> {
        Lang::ALL.iter().filter(|l| **l != self.lang).map(|l| (l.code(), l.native_name())).collect()
    }
}

/// JSON that cannot end the `<script>` element it sits in, nor be read as HTML.
fn script_safe_json(value: &Value) -> String {
    value.to_string().replace('<', "\\u003c").replace('>', "\\u003e").replace('&', "\\u0026")
}

/// Renders a page with the headers every page carries.
pub fn page(ctx: &PageCtx, status: StatusCode, template: &impl Template) -> Response {
    match template.render() {
        Ok(html) => {
            let mut response = (status, html).into_response();
            page_headers(ctx, response.headers_mut());
            response
        }
        Err(err) => {
            tracing::error!(error = %err, "cannot render a page");
            let mut response = (StatusCode::INTERNAL_SERVER_ERROR, "the page could not be rendered").into_response();
            page_headers(ctx, response.headers_mut());
            response
        }
    }
}

fn page_headers(ctx: &PageCtx, headers: &mut HeaderMap) {
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    // Invite codes and room ids sit in page URLs: no page may leak its URL to anything it links to.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    if let Ok(value) = HeaderValue::from_str(&ctx.csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
    headers.insert(
        "permissions-policy",
        HeaderValue::from_static("camera=(self), microphone=(self), display-capture=(self)"),
    );
    if ctx.remember_lang {
        let cookie = format!("{LANG_COOKIE}={}; Path=/; SameSite=Lax; Max-Age=31536000", ctx.lang.code());
        if let Ok(value) = HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    s: Shell,
    status: u16,
    heading: String,
    text: String,
}

/// A friendly error page (404, 403, 503, …) in the visitor's language.
pub fn error_page(ctx: &PageCtx, status: StatusCode, title_key: &str, text_key: &str) -> Response {
    let t = ctx.t();
    let template = ErrorPage {
        s: Shell::new(ctx, title_key, "", None, Value::Null),
        status: status.as_u16(),
        heading: t.get(title_key).to_owned(),
        text: t.get(text_key).to_owned(),
    };
    page(ctx, status, &template)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boot_json_cannot_close_its_script_element() {
        let text = script_safe_json(&json!({ "name": "</script><script>alert(1)</script>&" }));
        assert!(!text.contains('<') && !text.contains('>') && !text.contains('&'), "{text}");
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back["name"], "</script><script>alert(1)</script>&");
    }

    #[test]
    fn csp_allows_only_this_origin_and_the_media_server() {
        let config = Config::defaults().unwrap();
        let policy = csp(&config);
        assert!(policy.contains("script-src 'self';") && !policy.contains("unsafe"), "{policy}");
        assert!(policy.contains("connect-src 'self' ws://127.0.0.1:7880 http://127.0.0.1:7880;"), "{policy}");
        assert!(policy.contains("frame-ancestors 'none'") && policy.contains("base-uri 'none'"), "{policy}");
    }

    #[test]
    fn csp_lets_pages_reach_an_s3_file_store() {
        let mut config = Config::defaults().unwrap();
        config.files.backend = crate::config::StorageBackend::S3;
        config.files.s3_endpoint = Some(url::Url::parse("http://127.0.0.1:8333/").unwrap());
        assert!(csp(&config).contains("http://127.0.0.1:7880 http://127.0.0.1:8333;"), "{}", csp(&config));
        config.files.s3_endpoint = None;
        assert!(csp(&config).contains(" https://*.amazonaws.com;"), "{}", csp(&config));
    }
}
