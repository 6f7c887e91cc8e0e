//! Every TOML block of README.md and docs/*.md is a config that parses, whose
//! monitors build (with the built-in detector kinds and `zscore`), and whose
//! observers start, so that what the documentation shows really runs.
//!
//! A block that is deliberately not a config (a `Cargo.toml`, say) is marked
//! with `<!-- not-a-config -->` on the line before its fence.
//!
//! A Rust block marked `<!-- excerpt: PATH -->` on the line before its fence
//! is a quote of the file at PATH (relative to the repository's root): its
//! lines must appear there, in order and together, so that the quote is
//! code that compiles. Every Rust block of EXTENDING.md is such a quote.

use std::path::{Component, Path, PathBuf};

use model_monitor::Error;
use model_monitor::registry::BuildContext;
use model_monitor::runtime::Config;
use serde_json::Value;

/// The marker, on the line before a fence, of a TOML block that is not a config.
const NOT_A_CONFIG: &str = "<!-- not-a-config -->";

/// The marker, on the line before a fence, of a Rust block quoted from a file.
const EXCERPT: &str = "<!-- excerpt: ";

/// A fenced ```` ```toml ```` block.
#[derive(Debug, PartialEq)]
struct Block {
    /// The 1-based line of its opening fence.
    line: usize,
    text: String,
    /// Marked `<!-- not-a-config -->`.
    not_a_config: bool,
}

/// A fenced code block of some language.
#[derive(Debug, PartialEq)]
struct Fenced {
    /// The 1-based line of its opening fence.
    line: usize,
    text: String,
    /// The last non-blank line before the fence, outside any block.
    previous: String,
}

/// The top-level fenced blocks of `lang` in a Markdown text. Fences of three
/// or more backticks; a block inside a longer fence is part of that one.
fn fenced_blocks(markdown: &str, wanted: &str) -> Result<Vec<Fenced>, String> {
    struct Open {
        ticks: usize,
        line: usize,
        wanted: bool,
        previous: String,
        text: String,
    }
    let mut blocks = Vec::new();
    let mut open: Option<Open> = None;
    let mut previous = "";
    for (i, line) in markdown.lines().enumerate() {
        let trimmed = line.trim_start();
        let ticks = trimmed.chars().take_while(|&c| c == '`').count();
        let info = trimmed[ticks..].trim();
        match open.as_mut() {
            None if ticks >= 3 => {
                let lang = info.split(|c: char| c == ',' || c.is_whitespace()).next().unwrap_or("");
                open = Some(Open {
                    ticks,
                    line: i + 1,
                    wanted: lang == wanted,
                    previous: previous.trim().to_owned(),
                    text: String::new(),
                });
            }
            None => {
                if !line.trim().is_empty() {
                    previous = line;
                }
            }
            Some(fence) if ticks >= fence.ticks && info.is_empty() => {
                if fence.wanted {
                    blocks.push(Fenced {
                        line: fence.line,
                        text: std::mem::take(&mut fence.text),
                        previous: std::mem::take(&mut fence.previous),
                    });
                }
                open = None;
                previous = line;
            }
            Some(fence) => {
                fence.text.push_str(line);
                fence.text.push('\n');
            }
        }
    }
    match open {
        Some(fence) => Err(format!("the code block opened at line {} is never closed", fence.line)),
        None => Ok(blocks),
    }
}

/// The top-level TOML blocks of a Markdown text.
fn toml_blocks(markdown: &str) -> Result<Vec<Block>, String> {
    let blocks = fenced_blocks(markdown, "toml")?;
    Ok(blocks
        .into_iter()
        .map(|b| Block { line: b.line, text: b.text, not_a_config: b.previous == NOT_A_CONFIG })
        .collect())
}

/// The file a block quotes, from its `<!-- excerpt: PATH -->` marker.
fn excerpt_of(block: &Fenced) -> Option<&str> {
    block.previous.strip_prefix(EXCERPT)?.strip_suffix("-->").map(str::trim)
}

/// Whether the non-blank lines of `quote` appear in `source` in order and
/// together (blank lines aside), each compared without its indentation.
fn quotes(source: &str, quote: &str) -> bool {
    let lines = |text: &str| -> Vec<String> {
        text.lines().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned).collect()
    };
    let (source, quote) = (lines(source), lines(quote));
    !quote.is_empty() && source.windows(quote.len()).any(|w| w == quote.as_slice())
}

/// README.md and docs/*.md, by path relative to the repository's root.
fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .map(|path| path.strip_prefix(root).unwrap().to_path_buf())
        .collect();
    docs.sort();
    std::iter::once(PathBuf::from("README.md")).chain(docs).collect()
}

/// The `*_env` keys of an observer's table, anywhere in it: (dotted key, variable).
fn env_keys(value: &Value, prefix: &str, out: &mut Vec<(String, String)>) {
    if let Value::Object(table) = value {
        for (key, v) in table {
            let dotted = if prefix.is_empty() { key.clone() } else { format!("{prefix}.{key}") };
            match v {
                Value::String(var) if key.ends_with("_env") => out.push((dotted, var.clone())),
                _ => env_keys(v, &dotted, out),
            }
        }
    }
}

/// Whether an observer writes a file outside the directory it is given: a
/// `path` that is absolute or climbs out with `..`.
fn writes_outside(spec: &Value) -> bool {
    spec.get("path").and_then(Value::as_str).is_some_and(|p| {
        let p = Path::new(p);
        p.is_absolute() || p.components().any(|c| c == Component::ParentDir)
    })
}

/// Whether `e` is the config error of one of the `missing` (key, variable)
/// pairs of an observer built alone: its key, and the variable in its message.
fn names_one_of(e: &Error, missing: &[&(String, String)]) -> bool {
    match e {
        Error::Config { key, message } => {
            missing.iter().any(|(k, var)| *key == format!("observers[0].{k}") && message.contains(var.as_str()))
        }
        _ => false,
    }
}

fn is_set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

/// Checks one block; returns what is wrong with it.
fn check(block: &Block, ctx: &BuildContext) -> Vec<String> {
    let config = match Config::from_toml(&block.text) {
        Ok(config) => config,
        Err(e) => {
            return vec![format!(
                "does not parse as a config: {e}\n(mark it with {NOT_A_CONFIG} on the line before if it is not meant to be one)"
            )];
        }
    };
    let registry = super::observers();
    let mut problems = Vec::new();
    if let Err(e) = config.plan(ctx) {
        problems.push(format!("its monitors do not build: {e}"));
    }
    let mut every_observer_builds_here = true;
    for (i, spec) in config.observers.iter().enumerate() {
        let mut env = Vec::new();
        env_keys(spec, "", &mut env);
        if writes_outside(spec) {
            every_observer_builds_here = false;
            continue;
        }
        every_observer_builds_here &= env.is_empty();
        // Built alone, so that its errors are its own (and name `observers[0]`).
        let alone = Config { observers: vec![spec.clone()], ..Config::default() };
        let built = alone.build_observers(&registry, ctx);
        let missing: Vec<&(String, String)> = env.iter().filter(|(_, var)| !is_set(var)).collect();
        match (built, missing.is_empty()) {
            (Ok(_), true) => {}
            (Err(e), true) => problems.push(format!("observers[{i}] does not start: {e}")),
            (Ok(_), false) => problems.push(format!(
                "observers[{i}] started although {} is not set",
                missing.iter().map(|(_, var)| var.as_str()).collect::<Vec<_>>().join(", ")
            )),
            (Err(e), false) if names_one_of(&e, &missing) => {}
            (Err(e), false) => problems.push(format!(
                "observers[{i}] should fail naming its unset variable ({}), but: {e}",
                missing.iter().map(|(k, var)| format!("{k} = {var}")).collect::<Vec<_>>().join(", ")
            )),
        }
    }
    // And together, as the engine builds them.
    if every_observer_builds_here && problems.is_empty() {
        match config.build_observers(&registry, ctx) {
            Ok(observers) => assert_eq!(observers.len(), config.observers.len()),
            Err(e) => problems.push(format!("its observers do not start together: {e}")),
        }
    }
    problems
}

#[test]
fn every_toml_block_in_the_docs_is_a_config_that_starts() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let dir = tempfile::tempdir().unwrap();
    // The documented configs run "a script next to this config": there is one.
    let script = dir.path().join("retrain.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 0\n").unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let mut ctx = super::context(dir.path());
    monitor_zscore_detector::register(&mut ctx.detectors);
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in markdown_files(root) {
        let markdown = std::fs::read_to_string(root.join(&file)).unwrap();
        let blocks = match toml_blocks(&markdown) {
            Ok(blocks) => blocks,
            Err(e) => {
                problems.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        for block in blocks.iter().filter(|b| !b.not_a_config) {
            checked += 1;
            for problem in check(block, &ctx) {
                problems.push(format!("{}:{}: {problem}", file.display(), block.line));
            }
        }
    }
    assert!(problems.is_empty(), "{} problem(s) in documented configs:\n{}", problems.len(), problems.join("\n"));
    assert!(checked >= 2, "only {checked} TOML blocks found: is the extraction broken?");
}

#[test]
fn quoted_rust_blocks_are_the_code_they_quote() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in markdown_files(root) {
        let markdown = std::fs::read_to_string(root.join(&file)).unwrap();
        let blocks = match fenced_blocks(&markdown, "rust") {
            Ok(blocks) => blocks,
            Err(e) => {
                problems.push(format!("{}: {e}", file.display()));
                continue;
            }
        };
        for block in &blocks {
            let Some(path) = excerpt_of(block) else { continue };
            checked += 1;
            match std::fs::read_to_string(root.join(path)) {
                Ok(source) if quotes(&source, &block.text) => {}
                Ok(_) => problems.push(format!("{}:{}: not a quote of {path}", file.display(), block.line)),
                Err(e) => problems.push(format!("{}:{}: cannot read {path}: {e}", file.display(), block.line)),
            }
        }
    }
    // Every Rust block of the walk-throughs (observer, dispatcher, detector)
    // is a checked quote of code that compiles and is tested.
    let extending = std::fs::read_to_string(root.join("docs/EXTENDING.md")).unwrap();
    let rust = fenced_blocks(&extending, "rust").unwrap();
    assert!(rust.len() >= 12, "only {} Rust blocks in EXTENDING.md", rust.len());
    for block in rust.iter().filter(|b| excerpt_of(b).is_none()) {
        problems.push(format!("docs/EXTENDING.md:{}: not marked {EXCERPT}PATH -->", block.line));
    }
    assert!(problems.is_empty(), "{} problem(s) in quoted code:\n{}", problems.len(), problems.join("\n"));
    assert!(checked >= 4, "only {checked} quoted blocks found: is the extraction broken?");
}

#[test]
fn quotes_must_be_contiguous_and_ignore_indentation() {
    let source = "fn f() {\n    let a = 1;\n\n    let b = 2;\n}\n";
    assert!(quotes(source, "let a = 1;\nlet b = 2;\n"));
    assert!(quotes(source, "  fn f() {\n"));
    assert!(!quotes(source, "fn f() {\nlet b = 2;\n"));
    assert!(!quotes(source, "let c = 3;\n"));
    assert!(!quotes(source, "\n"));
    let marked = Fenced { line: 1, text: String::new(), previous: "<!-- excerpt: src/lib.rs -->".into() };
    assert_eq!(excerpt_of(&marked), Some("src/lib.rs"));
}

#[test]
fn blocks_are_found_at_the_top_level_and_the_marker_is_honoured() {
    let markdown = "\
Text.

```toml
a = 1
```

<!-- not-a-config -->
```toml
[package]
```

````markdown
```toml
b = 2
```
````

```sh
echo
```
  ```toml,ignore
  c = 3
  ```
";
    let blocks = toml_blocks(markdown).unwrap();
    assert_eq!(
        blocks,
        [
            Block { line: 3, text: "a = 1\n".into(), not_a_config: false },
            Block { line: 8, text: "[package]\n".into(), not_a_config: true },
            Block { line: 21, text: "  c = 3\n".into(), not_a_config: false },
        ]
    );
    assert!(toml_blocks("```toml\na = 1\n").is_err());
}

#[test]
fn env_keys_are_found_in_nested_tables() {
    let spec = serde_json::json!({
        "kind": "retrain",
        "dispatch": {"kind": "http", "preset": "airflow", "token_env": "AIRFLOW_TOKEN"},
        "secret_env": "S",
    });
    let mut found = Vec::new();
    env_keys(&spec, "", &mut found);
    found.sort();
    assert_eq!(
        found,
        [("dispatch.token_env".to_owned(), "AIRFLOW_TOKEN".to_owned()), ("secret_env".into(), "S".into())]
    );
}
