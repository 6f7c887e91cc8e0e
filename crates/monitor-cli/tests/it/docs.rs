//! The shell and JSON blocks of README.md and docs/*.md do what they say:
//! every `model-monitor` command runs (on the demo's log and config, under
//! the names the docs use), every `cargo` command names a real package and
//! test, every script parses, and every JSON block is JSON (a record, where
//! it shows a record). TOML and Rust blocks are checked by the e2e tests and
//! the facade's doctests.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The repository's root.
fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn markdown_files() -> Vec<PathBuf> {
    let root = root();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

/// The fenced blocks of `lang`, with the 1-based line of their fence.
fn blocks(markdown: &str, lang: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for (i, line) in markdown.lines().enumerate() {
        match &mut current {
            None if line.trim_start().starts_with("```") && line.trim_start()[3..].trim() == lang => {
                current = Some((i + 1, String::new()));
            }
            Some(_) if line.trim_start().starts_with("```") => out.extend(current.take()),
            Some((_, text)) => {
                text.push_str(line);
                text.push('\n');
            }
            None => {}
        }
    }
    out
}

fn workspace_packages() -> Vec<String> {
    let root = root();
    let mut names = Vec::new();
    for dir in ["crates", "."] {
        let base = root.join(dir);
        let candidates: Vec<PathBuf> = if dir == "." {
            vec![root.join("xtask/Cargo.toml"), root.join("tests/Cargo.toml")]
        } else {
            std::fs::read_dir(&base).unwrap().filter_map(|e| e.ok().map(|e| e.path().join("Cargo.toml"))).collect()
        };
        for manifest in candidates {
            if let Ok(text) = std::fs::read_to_string(&manifest) {
                let table: toml::Table = toml::from_str(&text).unwrap();
                if let Some(name) = table.get("package").and_then(|p| p.get("name")).and_then(|n| n.as_str()) {
                    names.push(name.to_owned());
                }
            }
        }
    }
    names
}

/// A directory with the files the docs' commands name.
fn fixtures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let demo = root().join("crates/monitor-cli/demo");
    std::fs::copy(demo.join("records.ndjson"), dir.path().join("log.ndjson")).unwrap();
    // The demo's config without its observers: the docs' commands run anywhere.
    let config = std::fs::read_to_string(demo.join("monitor.toml")).unwrap();
    let monitors = config.split("[[observers]]").next().unwrap();
    std::fs::write(dir.path().join("monitor.toml"), monitors).unwrap();
    super::parquet::write_sample_log(&dir.path().join("log.parquet"));
    dir
}

#[test]
fn shell_blocks_run_and_name_real_things() {
    let bin_dir = Path::new(env!("CARGO_BIN_EXE_model-monitor")).parent().unwrap().to_path_buf();
    let path = format!("{}:{}", bin_dir.display(), std::env::var("PATH").unwrap_or_default());
    let packages = workspace_packages();
    let dir = fixtures();
    let mut ran = 0;
    let mut problems = Vec::new();
    for file in markdown_files() {
        let markdown = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (line_no, block) in blocks(&markdown, "sh") {
            if block.starts_with("#!") {
                // A script: it must parse.
                let out = Command::new("sh").args(["-n", "-c", &block]).output().unwrap();
                if !out.status.success() {
                    problems.push(format!("{name}:{line_no}: the script does not parse"));
                }
                continue;
            }
            for line in joined_lines(&block) {
                let command = line.split(" #").next().unwrap().trim();
                // Comments, and answers shown after a request.
                if command.is_empty() || command.starts_with('#') || command.starts_with('{') {
                    continue;
                }
                if command.contains("curl ") {
                    if let Err(e) = check_route(command) {
                        problems.push(format!("{name}:{line_no}: {e}"));
                    }
                    continue;
                }
                if command.contains("model-monitor serve") {
                    ran += 1;
                    if let Err(e) = run_serve(command, dir.path(), &path) {
                        problems.push(format!("{name}:{line_no}: `{command}`: {e}"));
                    }
                    continue;
                }
                if let Some(rest) = command.strip_prefix("cargo ") {
                    let words: Vec<&str> = rest.split_whitespace().collect();
                    for pair in words.windows(2) {
                        if pair[0] == "-p" && !packages.iter().any(|p| p == pair[1]) {
                            problems.push(format!("{name}:{line_no}: no package `{}` in `{command}`", pair[1]));
                        }
                    }
                    continue;
                }
                if !command.contains("model-monitor") {
                    continue;
                }
                // Live reading (`tail -f`) is run on the whole file.
                let command = command.replace("tail -f ", "cat ");
                let out = Command::new("sh")
                    .args(["-c", &command])
                    .current_dir(dir.path())
                    .env("PATH", &path)
                    .output()
                    .unwrap();
                ran += 1;
                if !out.status.success() {
                    problems.push(format!(
                        "{name}:{line_no}: `{command}` failed ({:?}): {}",
                        out.status,
                        String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default()
                    ));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(ran >= 5, "only {ran} commands found: is the extraction broken?");
}

/// The block's lines, with `\`-continued lines joined.
fn joined_lines(block: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    for line in block.lines() {
        match line.strip_suffix('\\') {
            Some(head) => current.push_str(head),
            None => {
                current.push_str(line);
                out.push(std::mem::take(&mut current));
            }
        }
    }
    out
}

/// A `curl` line names a route of the server's OpenAPI document.
fn check_route(command: &str) -> Result<(), String> {
    let document = model_monitor::runtime::server::openapi_document();
    let paths: Vec<String> = document["paths"].as_object().unwrap().keys().cloned().collect();
    let url = command
        .split_whitespace()
        .map(|w| w.trim_matches(|c| c == '"' || c == '\''))
        .find(|w| w.starts_with("http://") || w.starts_with("$M"))
        .ok_or_else(|| format!("no URL in `{command}`"))?;
    let path = url.trim_start_matches("$M").trim_start_matches("http://");
    let path = if url.starts_with("http://") { &path[path.find('/').unwrap_or(path.len())..] } else { path };
    let path = path.split('?').next().unwrap_or(path);
    let matches = |route: &str| {
        let (a, b): (Vec<&str>, Vec<&str>) = (route.split('/').collect(), path.split('/').collect());
        a.len() == b.len() && a.iter().zip(&b).all(|(r, p)| r.starts_with('{') || r == p)
    };
    if paths.iter().any(|r| matches(r)) { Ok(()) } else { Err(format!("`{path}` is not a route of the API")) }
}

/// Starts `model-monitor serve` as the docs show it (on a port the system
/// picks, with the fixtures' config), waits until it listens, and stops it
/// with SIGTERM: it must start, and end with 0.
fn run_serve(command: &str, dir: &Path, path: &str) -> Result<(), String> {
    use std::io::{BufRead, BufReader};
    let mut args: Vec<String> = command
        .trim_end_matches('&')
        .split_whitespace()
        .skip_while(|w| *w != "serve")
        .map(|w| if w.starts_with("/etc/") { "monitor.toml".to_owned() } else { w.to_owned() })
        .collect();
    for arg in &mut args {
        if let Some((host, _port)) = arg.rsplit_once(':') {
            if host.chars().all(|c| c.is_ascii_digit() || c == '.') && !host.is_empty() {
                *arg = "127.0.0.1:0".to_owned();
            }
        }
    }
    if !args.iter().any(|a| a == "--listen") {
        args.extend(["--listen".to_owned(), "127.0.0.1:0".to_owned()]);
    }
    let mut child = Command::new("model-monitor")
        .args(&args)
        .current_dir(dir)
        .env("PATH", path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).map_err(|e| e.to_string())?;
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let status = child.wait().map_err(|e| e.to_string())?;
    if !first.starts_with("listening on http://") {
        return Err(format!("did not start: {first:?}, {status:?}"));
    }
    if !status.success() {
        return Err(format!("did not end cleanly on SIGTERM: {status:?}"));
    }
    Ok(())
}

#[test]
fn json_blocks_are_json_and_records_are_records() {
    let mut checked = 0;
    let mut problems = Vec::new();
    for file in markdown_files() {
        let markdown = std::fs::read_to_string(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        for (line_no, block) in blocks(&markdown, "json") {
            checked += 1;
            // A block may hold several objects, one after the other.
            let parsed: Result<Vec<serde_json::Value>, _> =
                serde_json::Deserializer::from_str(&block).into_iter::<serde_json::Value>().collect();
            let values = match parsed {
                Ok(values) => values,
                Err(e) => {
                    problems.push(format!("{name}:{line_no}: not JSON: {e}"));
                    continue;
                }
            };
            for value in values {
                let is_record =
                    value.get("model").is_some() && value.get("type").is_none() && value.get("job_id").is_none();
                if is_record {
                    let text = value.to_string();
                    if let Err(e) = model_monitor::record::Record::parse(&text, chrono::Utc::now()) {
                        problems.push(format!("{name}:{line_no}: a record the parser rejects: {e}"));
                    }
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(checked >= 5, "only {checked} JSON blocks found");
}
