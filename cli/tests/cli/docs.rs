//! The operator documentation cannot drift from the command line: every `confctl …` command shown in a code
//! block of `docs/operator-guide.md` or `docs/security.md` must parse with the real binary (run with `--help`
//! appended, so nothing is executed but clap still rejects unknown subcommands, flags and values).

use crate::support::{isolated, repo_file};

const DOCS: &[&str] = &["docs/operator-guide.md", "docs/security.md"];

/// Lines inside fenced code blocks, with `\` continuations joined, as (line number, text).
fn code_lines(markdown: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut in_block = false;
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        let (number, mut text) = pending.take().unwrap_or((i + 1, String::new()));
        text.push_str(line.trim());
        if let Some(stripped) = text.strip_suffix('\\') {
            pending = Some((number, format!("{} ", stripped.trim_end())));
        } else {
            out.push((number, text));
        }
    }
    out
}

/// Splits a shell command line into words: single and double quotes group, a backslash escapes, and a
/// command substitution `$( … )` stays inside its word.
fn words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '$') if chars.peek() == Some(&'(') => {
                let mut depth = 0;
                word.push(c);
                for inner in chars.by_ref() {
                    word.push(inner);
                    match inner {
                        '(' => depth += 1,
                        ')' if depth == 1 => break,
                        ')' => depth -= 1,
                        _ => {}
                    }
                }
                in_word = true;
            }
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, '\\') => {
                word.extend(chars.next());
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// The `confctl` arguments of a documented command line, if it is one: `confctl …`, `sudo confctl …`,
/// `sudo -u USER confctl …`, `sudo env VAR=value confctl …`. Stops at a comment, pipe, redirection or `&&`.
fn confctl_args(line: &str) -> Option<Vec<String>> {
    let line = line.strip_prefix("$ ").unwrap_or(line);
    if !(line.starts_with("confctl ") || line.starts_with("sudo ")) {
        return None;
    }
    let mut all = words(line).into_iter().peekable();
    if all.peek().is_some_and(|w| w == "sudo") {
        all.next();
        loop {
            match all.peek().map(String::as_str) {
                Some("-u") => {
                    all.next();
                    all.next();
                }
                Some("env" | "-E") => {
                    all.next();
                }
                Some(w) if w.contains('=') && !w.starts_with('-') => {
                    all.next();
                }
                _ => break,
            }
        }
    }
    if all.next().as_deref() != Some("confctl") {
        return None;
    }
    let mut args = Vec::new();
    for word in all {
        if word.starts_with('#') || matches!(word.as_str(), "|" | "||" | "&&" | ";" | ">" | ">>" | "<" | "2>&1") {
            break;
        }
        if word.starts_with('>') || word.starts_with('<') || word.starts_with("2>") {
            break;
        }
        args.push(word);
    }
    Some(args)
}

#[test]
fn the_line_parser_understands_the_shapes_the_docs_use() {
    assert_eq!(
        confctl_args("sudo -u confctl confctl admin user create --email a@b.edu --name 'Prof. Ada' --role host"),
        Some(
            ["admin", "user", "create", "--email", "a@b.edu", "--name", "Prof. Ada", "--role", "host"]
                .map(String::from)
                .to_vec()
        )
    );
    assert_eq!(confctl_args("confctl doctor --json | jq ."), Some(vec!["doctor".to_owned(), "--json".to_owned()]));
    assert_eq!(
        confctl_args("sudo env CONFCTL_X_FILE=/etc/x confctl doctor # comment"),
        Some(vec!["doctor".to_owned()])
    );
    assert_eq!(confctl_args("sudo systemctl start confctl"), None);
    assert_eq!(
        confctl_args("sudo confctl admin backup --out /var/backups/confctl-$(date +%F).tar.gz"),
        Some(["admin", "backup", "--out", "/var/backups/confctl-$(date +%F).tar.gz"].map(String::from).to_vec())
    );
    assert_eq!(
        confctl_args("confctl generate completions bash > x"),
        Some(["generate", "completions", "bash"].map(String::from).to_vec())
    );
    let joined = code_lines("```sh\nconfctl serve \\\n  --listen 0.0.0.0:8080\n```\n");
    assert_eq!(joined, vec![(2, "confctl serve --listen 0.0.0.0:8080".to_owned())]);
}

#[test]
fn documented_commands_parse() {
    let mut checked = 0;
    let mut failures = Vec::new();
    for doc in DOCS {
        for (number, line) in code_lines(&repo_file(doc)) {
            let Some(args) = confctl_args(&line) else { continue };
            let out = isolated().args(&args).arg("--help").output().unwrap();
            checked += 1;
            if !out.status.success() {
                let err = String::from_utf8_lossy(&out.stderr);
                failures.push(format!("{doc}:{number}: `{line}`\n    {}", err.lines().next().unwrap_or_default()));
            }
        }
    }
    assert!(checked >= 10, "only {checked} documented confctl commands found; the parser may be broken");
    assert!(failures.is_empty(), "documented commands that the CLI rejects:\n{}", failures.join("\n"));
}
