//! The HTTP reference cannot drift from the router: every route registered in `src/http/mod.rs` and
//! `src/http/pages/mod.rs` must appear, as `METHOD /path` for each of its methods, in `docs/api.md` or
//! `docs/agent-api.md`. (The CLI commands in the operator guide are checked in `cli/tests/docs.rs`.)

use std::path::Path;

fn repo_file(rel: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

/// The text between `start` and the first `end` after it.
fn section<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).unwrap_or_else(|| panic!("`{start}` not found: the router moved; update this test"));
    let rest = &text[from..];
    let to = rest.find(end).unwrap_or_else(|| panic!("`{end}` not found after `{start}`"));
    &rest[..to]
}

/// Every `.route("path", handlers)` in `code`, as (path, methods). Methods are the `get(`, `post(`, `put(`,
/// `patch(` and `delete(` calls inside the route's parentheses.
fn routes(code: &str) -> Vec<(String, Vec<&'static str>)> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find(".route(\"") {
        let after = &rest[at + ".route(\"".len()..];
        let end = after.find('"').expect("unterminated route path");
        let path = after[..end].to_owned();
        // The route's arguments: up to the parenthesis that closes `.route(`.
        let mut depth = 1;
        let mut close = after.len();
        for (i, c) in after.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        close = i;
                        break;
                    }
                }
                _ => {}
            }
        }
        let args = &after[end..close];
        let mut methods = Vec::new();
        for (word, method) in
            [("get(", "GET"), ("post(", "POST"), ("put(", "PUT"), ("patch(", "PATCH"), ("delete(", "DELETE")]
        {
            let found = args.match_indices(word).any(|(i, _)| {
                i == 0 || !args[..i].chars().next_back().is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if found {
                methods.push(method);
            }
        }
        assert!(!methods.is_empty(), "no method found for route {path}: the test's parser needs updating");
        out.push((path, methods));
        rest = &after[close..];
    }
    out
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
    let http = repo_file("src/http/mod.rs");
    let pages = repo_file("src/http/pages/mod.rs");
    let api_block = section(&http, "let api = Router::new()", ".fallback(api_not_found)");
    let outer_block = section(&http, ".fallback(api_not_found);", ".with_state(app)");

    let mut expected: Vec<(String, &'static str)> = Vec::new();
    let mut add = |prefix: &str, found: Vec<(String, Vec<&'static str>)>| {
        for (path, methods) in found {
            for method in methods {
                expected.push((format!("{prefix}{path}"), method));
            }
        }
    };
    add("/api", routes(api_block));
    add("", routes(outer_block));
    add("/api", routes(section(&pages, "pub fn api()", "\n}\n")));
    add("", routes(section(&pages, "pub fn router()", "\n}\n")));
    assert!(expected.len() > 60, "suspiciously few routes parsed ({}): update the parser", expected.len());
    assert!(expected.iter().any(|(p, m)| p == "/healthz" && *m == "GET"), "health routes are parsed");

    let docs = format!("{}\n{}", repo_file("docs/api.md"), repo_file("docs/agent-api.md"));
    let missing: Vec<String> = expected
        .iter()
        .filter(|(path, method)| !mentions(&docs, &format!("{method} {path}")))
        .map(|(path, method)| format!("{method} {path}"))
        .collect();
    assert!(
        missing.is_empty(),
        "routes missing from docs/api.md (write them as `METHOD /path`, e.g. `GET /api/rooms/{{roomId}}`):\n  {}",
        missing.join("\n  ")
    );
}
