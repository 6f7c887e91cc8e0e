//! The committed seeds of the `ndjson` and `config` fuzz targets
//! (`fuzz/corpus/<target>`), run through the targets' own harnesses, so
//! that the checks the fuzzer makes (and the inputs that once crashed it)
//! run on stable in every test run; and the record and NDJSON seeds posted
//! to a real server, whose body parser must answer each with 200 or 400.

use std::path::Path;

#[path = "../../../../fuzz/harness/config.rs"]
mod config_harness;
#[path = "../../../../fuzz/harness/ndjson.rs"]
mod ndjson_harness;

/// Every file of `fuzz/corpus/<target>`, by name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz/corpus").join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            (path.file_name().expect("a file name").to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    files
}

fn replay(target: &str, min_files: usize, check: fn(&[u8])) {
    let files = corpus(target);
    assert!(files.len() >= min_files, "the {target} corpus is missing files: {}", files.len());
    for (name, bytes) in files {
        if std::panic::catch_unwind(|| check(&bytes)).is_err() {
            panic!("fuzz/corpus/{target}/{name} fails the {target} checks");
        }
    }
}

#[test]
fn the_ndjson_corpus_passes_the_fuzz_checks() {
    replay("ndjson", 5, ndjson_harness::check);
}

#[test]
fn the_config_corpus_passes_the_fuzz_checks() {
    replay("config", 5, config_harness::check);
}

#[cfg(feature = "server")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_body_parser_answers_every_seed_with_200_or_400() {
    use monitor_core::observer::ObserverRegistry;
    use monitor_runtime::server::Server;
    use monitor_runtime::{Config, EngineBuilder};

    let config =
        Config::from_toml("[server]\nlisten = \"127.0.0.1:0\"\nmax_line_bytes = 256\n").expect("a valid config");
    let server = Server::new(config.server.clone(), false).expect("a server");
    let engine = EngineBuilder::from_config(&config, &ObserverRegistry::new(), &super::ctx())
        .expect("an engine")
        .observer(server.observer())
        .spawn()
        .expect("a running engine");
    let (handle, serving) = server.bind(engine.engine()).await.expect("bound to loopback");
    let serving = tokio::spawn(serving);
    let url = format!("http://{}/v1/records", handle.local_addr());
    let client = reqwest::Client::new();
    // The NDJSON seeds start with two bytes of the harness's settings.
    let bodies = corpus("record").into_iter().chain(corpus("ndjson").into_iter().map(|(n, b)| (n, b[2..].to_vec())));
    let mut answered = 0;
    for (name, body) in bodies {
        for content_type in ["application/json", "application/x-ndjson"] {
            let answer = client
                .post(&url)
                .header("content-type", content_type)
                .body(body.clone())
                .send()
                .await
                .unwrap_or_else(|e| panic!("{name} as {content_type}: {e}"));
            let status = answer.status().as_u16();
            let text = answer.text().await.expect("an answer body");
            assert!(matches!(status, 200 | 400), "{name} as {content_type}: {status} {text}");
            let json: serde_json::Value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} as {content_type}: {e}: {text}"));
            if let Some(accepted) = json.get("accepted") {
                let rejected = &json["rejected"];
                assert!(accepted.is_u64() && rejected.is_u64(), "{name} as {content_type}: {text}");
                assert_eq!(status == 200, accepted.as_u64() > Some(0), "{name} as {content_type}: {status} {text}");
            } else {
                assert_eq!((status, json["error"].is_string()), (400, true), "{name} as {content_type}: {text}");
            }
            answered += 1;
        }
    }
    assert!(answered >= 20, "{answered} bodies posted");
    handle.shutdown();
    serving.await.expect("the server stops");
    engine.shutdown().await;
}
