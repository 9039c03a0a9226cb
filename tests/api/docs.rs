//! The HTTP reference cannot drift from the router: every route the application serves
//! (`confctl::http::served`, listed by the same calls that build the router) must appear, as `METHOD /path`,
//! in `docs/api.md` or `docs/agent-api.md`. (The CLI commands in the operator guide are checked in
//! `cli/tests/cli/docs.rs`.)

use std::path::Path;

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// True when `needle` occurs in `text` as a whole path: not followed by more path characters.
fn mentions(text: &str, needle: &str) -> bool {
    text.match_indices(needle).any(|(i, _)| {
        let next = text[i + needle.len()..].chars().next();
        !next.is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '{' | '-' | '_' | '.'))
    })
}

#[test]
fn every_route_is_documented() {
    let expected = confctl::http::served();
    assert!(expected.len() > 60, "suspiciously few routes listed ({})", expected.len());
    assert!(expected.iter().any(|route| route == "GET /healthz"), "health routes are listed");

    let docs = format!("{}\n{}", repo_file("docs/api.md"), repo_file("docs/agent-api.md"));
    let missing: Vec<&str> = expected.iter().filter(|route| !mentions(&docs, route)).map(String::as_str).collect();
    assert!(
        missing.is_empty(),
        "routes missing from docs/api.md (write them as `METHOD /path`, e.g. `GET /api/rooms/{{roomId}}`):\n  {}",
        missing.join("\n  ")
    );
}
