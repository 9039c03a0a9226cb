//! The pages' static files — `web/static/` (CSS, ES modules) and `web/vendor/` (livekit-client) — embedded in
//! the binary and served under content-hashed names (`/assets/room.3f2a1c9d0e.js`) that can be cached forever.
//!
//! ES modules import each other by relative name (`from "./common.js"`); those imports are rewritten to the
//! hashed URLs, so a module's hash covers what it imports and a change anywhere reaches every page at once.

use std::collections::HashMap;
use std::io::Write as _;
use std::sync::OnceLock;

use axum::body::Body;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};

#[derive(RustEmbed)]
#[folder = "web/static/"]
struct Static;

#[derive(RustEmbed)]
#[folder = "web/vendor/"]
struct Vendor;

/// URL prefix of every asset.
pub const PREFIX: &str = "/assets/";

/// One servable file.
#[derive(Debug)]
struct Asset {
    body: Vec<u8>,
    gzip: Option<Vec<u8>>,
    content_type: &'static str,
}

#[derive(Debug, Default)]
struct Manifest {
    /// Logical name (`room.js`) → URL (`/assets/room.3f2a1c9d0e.js`).
    urls: HashMap<String, String>,
    /// Hashed file name → contents.
    files: HashMap<String, Asset>,
}

fn content_type(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.').map(|(_, e)| e)?;
    Some(match ext {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        "json" => "application/json",
        "txt" | "version" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

fn hashed_name(name: &str, body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hash = crate::ids::hex(&digest[..5]);
    match name.rsplit_once('.') {
        Some((stem, ext)) => format!("{stem}.{hash}.{ext}"),
        None => format!("{name}.{hash}"),
    }
}

/// Relative module specifiers (`"./name.js"`) inside a script, in order.
fn imports(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for quote in ['"', '\''] {
        let opener = format!("{quote}./");
        for (i, _) in text.match_indices(&opener) {
            let before = text[..i].trim_end();
            if !(before.ends_with("from") || before.ends_with("import") || before.ends_with("import(")) {
                continue;
            }
            let rest = &text[i + opener.len()..];
            if let Some(end) = rest.find(quote) {
                found.push(rest[..end].to_owned());
            }
        }
    }
    found
}

fn gzip(body: &[u8]) -> Option<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(body).ok()?;
    let compressed = encoder.finish().ok()?;
    (compressed.len() < body.len() * 9 / 10).then_some(compressed)
}

fn build() -> Manifest {
    let mut sources: HashMap<String, Vec<u8>> = HashMap::new();
    // Vendored files are self-contained bundles: their text is served as is, never scanned for imports.
    let mut vendored = std::collections::HashSet::new();
    for name in Static::iter() {
        if let Some(file) = Static::get(&name) {
            sources.insert(name.to_string(), file.data.into_owned());
        }
    }
    for name in Vendor::iter() {
        if let Some(file) = Vendor::get(&name) {
            sources.insert(name.to_string(), file.data.into_owned());
            vendored.insert(name.to_string());
        }
    }
    let mut manifest = Manifest::default();
    let mut names: Vec<String> = sources.keys().cloned().collect();
    names.sort();
    for name in names {
        let mut visiting = Vec::new();
        add(&name, &sources, &vendored, &mut manifest, &mut visiting);
    }
    manifest
}

/// Adds `name` after the modules it imports (their URLs go into its text, and so into its hash).
fn add(
    name: &str,
    sources: &HashMap<String, Vec<u8>>,
    vendored: &std::collections::HashSet<String>,
    manifest: &mut Manifest,
    visiting: &mut Vec<String>,
) {
    if manifest.urls.contains_key(name) || visiting.iter().any(|v| v == name) {
        return;
    }
    let (Some(source), Some(content_type)) = (sources.get(name), content_type(name)) else { return };
    let mut body = source.clone();
    if content_type.starts_with("text/javascript") && !vendored.contains(name) {
        if let Ok(text) = std::str::from_utf8(source) {
            visiting.push(name.to_owned());
            let mut text = text.to_owned();
            for dep in imports(&text.clone()) {
                add(&dep, sources, vendored, manifest, visiting);
                match manifest.urls.get(&dep) {
                    Some(url) => {
                        text = text.replace(&format!("\"./{dep}\""), &format!("\"{url}\""));
                        text = text.replace(&format!("'./{dep}'"), &format!("'{url}'"));
                    }
                    None => {
                        tracing::error!(module = name, import = dep, "web asset imports a missing or cyclic module")
                    }
                }
            }
            visiting.pop();
            body = text.into_bytes();
        }
    }
    let hashed = hashed_name(name, &body);
    let gzip = if body.len() > 1024 && !content_type.starts_with("image/png") { gzip(&body) } else { None };
    manifest.urls.insert(name.to_owned(), format!("{PREFIX}{hashed}"));
    manifest.files.insert(hashed, Asset { body, gzip, content_type });
}

fn manifest() -> &'static Manifest {
    static MANIFEST: OnceLock<Manifest> = OnceLock::new();
    MANIFEST.get_or_init(build)
}

/// Prepares the manifest in the background, so the first page view does not wait for hashing and gzip.
pub fn warm_up() {
    std::thread::spawn(|| {
        manifest();
    });
}

/// The URL of an asset by its logical name (`app.css`); a missing asset is logged and gets a URL that 404s.
pub fn url(name: &str) -> String {
    match manifest().urls.get(name) {
        Some(url) => url.clone(),
        None => {
            tracing::error!(asset = name, "a page refers to a web asset that does not exist");
            format!("{PREFIX}{name}")
        }
    }
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or_default().trim();
            let refused = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        },
    )
}

/// `GET /assets/{file}`: hashed names are immutable; anything else is not found.
pub async fn serve(Path(file): Path<String>, headers: HeaderMap) -> Response {
    let Some(asset) = manifest().files.get(&file) else {
        return (StatusCode::NOT_FOUND, [(header::CACHE_CONTROL, "no-store")], "no such asset").into_response();
    };
    let mut response_headers = HeaderMap::new();
    response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(asset.content_type));
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=31536000, immutable"));
    response_headers.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
    let body = match &asset.gzip {
        Some(gz) if accepts_gzip(&headers) => {
            response_headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            Body::from(gz.as_slice())
        }
        _ => Body::from(asset.body.as_slice()),
    };
    (StatusCode::OK, response_headers, body).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports_are_found_and_rewritten_to_hashed_urls() {
        let text = "import { a } from \"./common.js\";\nimport './side.js';\nconst m = await import(\"./lazy.js\");\nconst s = \"./not-an-import.js\";";
        assert_eq!(imports(text), ["common.js", "lazy.js", "side.js"]);
        let m = manifest();
        let room = m.urls.get("room.js").expect("room.js is embedded");
        let body = std::str::from_utf8(&m.files[room.trim_start_matches(PREFIX)].body).unwrap();
        assert!(!body.contains("\"./"), "every relative import of room.js was rewritten");
        assert!(body.contains(&m.urls["common.js"]), "room.js imports common.js by its hashed URL");
        for (name, url) in &m.urls {
            let file = url.trim_start_matches(PREFIX);
            assert!(m.files.contains_key(file), "{name} → {url} is served");
            let asset = &m.files[file];
            assert_eq!(hashed_name(name, &asset.body), file, "{name}: the name is the hash of what is served");
        }
    }

    #[test]
    fn the_vendored_livekit_client_matches_the_lock_file() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let lock: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("package-lock.json")).unwrap()).unwrap();
        let locked = lock["packages"]["node_modules/livekit-client"]["version"].as_str().unwrap().to_owned();
        let package: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(root.join("package.json")).unwrap()).unwrap();
        assert_eq!(package["dependencies"]["livekit-client"], locked.as_str(), "package.json pins the locked version");
        let vendored = std::fs::read_to_string(root.join("vendor/livekit-client.esm.mjs")).unwrap();
        assert!(
            vendored.contains(&format!("var version$1 = \"{locked}\"")),
            "web/vendor/livekit-client.esm.mjs is not livekit-client {locked}: run scripts/update-livekit-client"
        );
        let recorded = std::fs::read_to_string(root.join("vendor/livekit-client.version")).unwrap();
        assert_eq!(recorded.trim(), locked);
        assert!(!vendored.contains("sourceMappingURL"), "the source map is not shipped, so it must not be referenced");
        assert!(!vendored.contains("\nimport ") && !vendored.starts_with("import "), "the module is self-contained");
        assert!(root.join("vendor/LICENSE-livekit-client").exists(), "its licence ships beside it");
    }

    #[test]
    fn gzip_is_offered_only_to_clients_that_accept_it() {
        let mut h = HeaderMap::new();
        assert!(!accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate, br"));
        assert!(accepts_gzip(&h));
        h.insert(header::ACCEPT_ENCODING, HeaderValue::from_static("br, gzip;q=0"));
        assert!(!accepts_gzip(&h));
    }
}
