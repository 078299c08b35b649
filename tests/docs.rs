//! Docs that drift from the code fail here:
//! - `docs/cli.md` is what the clap definition of `netcalc` generates now (regenerate it with
//!   `NETCALC_BLESS=1 cargo test --release --features wgpu,mpi,failpoints --test docs`);
//! - every `netcalc …` (or `cargo run --example mnist -- …`) command line in README.md and
//!   docs/*.md, in a code block or an inline code span, parses with that definition. A line
//!   meant to fail ends with the shell comment `# counter-example`.

use std::path::{Path, PathBuf};

use clap::Parser;
use netcalc::app::cli::Cli;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The CLI reference as the generator writes it.
fn cli_reference() -> String {
    let body = clap_markdown::help_markdown_custom::<Cli>(
        &clap_markdown::MarkdownOptions::new()
            .title("The `netcalc` command".into())
            .show_footer(false),
    );
    format!(
        "<!-- Generated from the clap definition (src/app/cli/args.rs) by tests/docs.rs; do not edit.\n     Regenerate: NETCALC_BLESS=1 cargo test --release --features wgpu,mpi,failpoints --test docs -->\n\n{body}"
    )
}

#[test]
fn the_cli_reference_is_what_the_cli_definition_generates() {
    let path = root().join("docs/cli.md");
    let now = cli_reference();
    if std::env::var_os("NETCALC_BLESS").is_some() {
        std::fs::write(&path, &now).unwrap();
    }
    let written = std::fs::read_to_string(&path).unwrap_or_default();
    if written != now {
        let line = written
            .lines()
            .zip(now.lines())
            .position(|(a, b)| a != b)
            .map_or_else(
                || written.lines().count().min(now.lines().count()) + 1,
                |i| i + 1,
            );
        panic!(
            "docs/cli.md differs from what the CLI definition generates (first at line {line}); \
             regenerate it: NETCALC_BLESS=1 cargo test --release --features wgpu,mpi,failpoints --test docs"
        );
    }
}

/// The documents a user reads (but the generated reference, whose usage lines are syntax,
/// not commands).
fn documents() -> Vec<PathBuf> {
    let mut docs = vec![root().join("README.md")];
    let mut more: Vec<PathBuf> = std::fs::read_dir(root().join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md") && !p.ends_with("docs/cli.md"))
        .collect();
    more.sort();
    docs.extend(more);
    docs
}

/// `(line number, text)` of every candidate command: each line of a fenced code block (with
/// `\` continuations joined) and each inline code span elsewhere.
fn candidates(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut fenced = false;
    // a fence of another language (TOML, Rust, JSON, Python…) holds no shell commands
    let mut other_language = false;
    let mut pending: Option<(usize, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        if let Some(tag) = line.trim_start().strip_prefix("```") {
            fenced = !fenced;
            other_language = fenced
                && !matches!(
                    tag.trim(),
                    "" | "bash" | "sh" | "shell" | "console" | "text"
                );
            continue;
        }
        if fenced && other_language {
            continue;
        }
        if fenced {
            let (start, mut joined) = pending.take().unwrap_or((n, String::new()));
            let part = line.trim();
            if let Some(head) = part.strip_suffix('\\') {
                joined.push_str(head);
                joined.push(' ');
                pending = Some((start, joined));
            } else {
                joined.push_str(part);
                out.push((start, joined));
            }
            continue;
        }
        let mut spans = line.split('`');
        spans.next();
        while let Some(code) = spans.next() {
            out.push((n, code.to_string()));
            spans.next();
        }
    }
    out
}

/// The `netcalc` arguments of one shell command (`None`: not a netcalc command).
fn netcalc_args(command: &str) -> Option<Vec<String>> {
    let words = shlex::split(command)?;
    let mut words: &[String] = &words;
    // leading environment assignments and wrappers
    while let Some(w) = words.first() {
        let assignment = w.split_once('=').is_some_and(|(k, _)| {
            !k.is_empty()
                && k.chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')
        });
        if assignment || w == "$" || w == "sudo" || w == "exec" {
            words = &words[1..];
        } else if w == "timeout" && words.len() > 1 {
            words = &words[2..];
        } else {
            break;
        }
    }
    let first = words.first()?;
    let program = Path::new(first).file_name()?.to_str()?;
    let args: Vec<String> = if program == "netcalc" {
        words[1..].to_vec()
    } else if program == "mpirun" || program == "mpiexec" {
        // mpirun's own options up to the program (the first `netcalc` word)
        let at = words
            .iter()
            .position(|w| Path::new(w).file_name().is_some_and(|f| f == "netcalc"))?;
        words[at + 1..].to_vec()
    } else if program == "cargo"
        && words.get(1).is_some_and(|w| w == "run")
        && words
            .windows(2)
            .any(|w| w[0] == "--example" && w[1] == "mnist")
    {
        match words.iter().position(|w| w == "--") {
            Some(at) => words[at + 1..].to_vec(),
            None => Vec::new(),
        }
    } else {
        return None;
    };
    Some(
        std::iter::once("netcalc".to_string())
            .chain(args.into_iter().filter(|a| a != "…" && a != "..."))
            .collect(),
    )
}

/// Every netcalc command line in `text` that does not parse, as `line: command: error`.
fn unparsed(text: &str) -> Vec<String> {
    let mut bad = Vec::new();
    for (line, candidate) in candidates(text) {
        if candidate.contains("# counter-example") {
            continue;
        }
        // a shell comment ends the command; `&&`, `;` and `|` separate commands
        let code = candidate.split(" #").next().unwrap_or_default();
        for command in code
            .split("&&")
            .flat_map(|c| c.split(';'))
            .flat_map(|c| c.split('|'))
        {
            let Some(args) = netcalc_args(command.trim()) else {
                continue;
            };
            if let Err(e) = Cli::try_parse_from(&args) {
                use clap::error::ErrorKind::{DisplayHelp, DisplayVersion};
                if !matches!(e.kind(), DisplayHelp | DisplayVersion) {
                    let first = e.to_string().lines().next().unwrap_or_default().to_string();
                    bad.push(format!("{line}: `{}`: {first}", command.trim()));
                }
            }
        }
    }
    bad
}

#[test]
fn every_documented_command_line_parses() {
    let mut bad = Vec::new();
    let mut seen = 0;
    for doc in documents() {
        let text = std::fs::read_to_string(&doc).unwrap();
        seen += candidates(&text)
            .iter()
            .filter(|(_, c)| {
                netcalc_args(c.split(" #").next().unwrap_or_default().trim()).is_some()
            })
            .count();
        for b in unparsed(&text) {
            bad.push(format!(
                "{}:{b}",
                doc.strip_prefix(root()).unwrap_or(&doc).display()
            ));
        }
    }
    assert!(
        seen > 20,
        "only {seen} command lines found: is the scan broken?"
    );
    assert!(
        bad.is_empty(),
        "documented command lines that netcalc does not parse:\n{}",
        bad.join("\n")
    );
}

#[test]
fn the_scan_finds_commands_where_users_read_them() {
    let text = "Run `netcalc train --epochs 2` or:\n\n```bash\nFOO=1 netcalc serve \\\n  --model RUN --max-batch 8   # a comment\nmpirun -np 2 --oversubscribe netcalc train --epochs 1\ncargo run --release --example mnist -- eval --model RUN\nnetcalc train --no-such-flag   # counter-example\n```\n";
    let found: Vec<Vec<String>> = candidates(text)
        .iter()
        .filter_map(|(_, c)| netcalc_args(c.split(" #").next().unwrap_or_default().trim()))
        .collect();
    assert_eq!(found.len(), 5, "{found:?}");
    assert_eq!(
        found[1],
        ["netcalc", "serve", "--model", "RUN", "--max-batch", "8"]
    );
    assert_eq!(found[2][..3], ["netcalc", "train", "--epochs"]);
    assert_eq!(found[3], ["netcalc", "eval", "--model", "RUN"]);
    assert!(unparsed(text).is_empty(), "{:?}", unparsed(text));
    // a renamed flag is caught, with its line
    let renamed = text.replace("--max-batch", "--batch-max");
    let bad = unparsed(&renamed);
    assert_eq!(bad.len(), 1, "{bad:?}");
    assert!(
        bad[0].starts_with("4: ") && bad[0].contains("--batch-max"),
        "{bad:?}"
    );
}
