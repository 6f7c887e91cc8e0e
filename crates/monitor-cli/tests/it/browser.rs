//! The demo's report and the live dashboard, opened in a real browser
//! (Debian's chromium, headless): the pages load without a console message
//! or a request to anything but themselves, every monitored signal has its
//! chart, and the finding markers sit where their time is on the axis.
//! Without chromium on the PATH the test says so and checks nothing more.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::{bin, scratch, text};

/// Measures, in the browser, each timeline's plot area and each marker's
/// line, and lists every resource the page loaded and every policy
/// violation; writes them as JSON into `#probe` for `--dump-dom`.
const PROBE: &str = r#"<script>
const violations = [];
document.addEventListener('securitypolicyviolation', e => violations.push(e.blockedURI || e.violatedDirective));
window.addEventListener('load', () => {
  const charts = [...document.querySelectorAll('figure.chart.timeline')].map(fig => {
    const area = fig.querySelector('rect.plot-area');
    const r = area.getBoundingClientRect();
    const x0 = +area.dataset.x0, x1 = +area.dataset.x1;
    const markers = [...fig.querySelectorAll('g.marker')].map(g => {
      const l = g.querySelector('line.marker-line').getBoundingClientRect();
      return { ms: +g.dataset.ms, kind: g.getAttribute('class'), x: l.left + l.width / 2,
               expected: r.left + (+g.dataset.ms - x0) / (x1 - x0) * r.width };
    });
    return { signal: fig.dataset.signal, width: r.width, height: r.height, markers };
  });
  const resources = performance.getEntriesByType('resource').map(e => e.name);
  const pre = document.createElement('pre');
  pre.id = 'probe';
  pre.textContent = JSON.stringify({ charts, resources, violations });
  document.body.appendChild(pre);
});
</script>"#;

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path).map(|d| d.join("chromium")).find(|p| p.is_file())
}

/// Runs headless chromium on `url` with a fresh profile; returns its
/// standard output and its log (standard error).
fn browse(chromium: &Path, profile: &Path, url: &str, action: &[&str]) -> (String, String) {
    let out = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--disable-quic",
            "--disable-sync",
            "--hide-scrollbars",
            "--window-size=1280,1600",
            "--enable-logging=stderr",
            "--v=0",
        ])
        .arg(format!("--user-data-dir={}", profile.display()))
        .args(action)
        .arg(url)
        .output()
        .unwrap();
    assert!(out.status.success(), "chromium failed on {url}: {}", text(&out.stderr));
    (text(&out.stdout), text(&out.stderr))
}

/// The page wrote nothing to the console: no error, no refused load.
fn no_console(log: &str, what: &str) {
    let console: Vec<&str> = log.lines().filter(|l| l.contains(":CONSOLE")).collect();
    assert!(console.is_empty(), "{what} wrote to the console: {console:#?}");
}

/// Opens `html` with the probe (allowed to run by its own policy, which is
/// otherwise the page's) and checks what it measured: each signal in
/// `signals` has a chart, and every marker sits at its time.
fn probe(chromium: &Path, dir: &Path, html: &str, signals: &[&str], name: &str) -> serde_json::Value {
    let probed = html
        .replace("default-src 'none';", "default-src 'none'; script-src 'unsafe-inline';")
        .replace("</body>", &format!("{PROBE}</body>"));
    let file = dir.join(format!("{name}-probe.html"));
    std::fs::write(&file, probed).unwrap();
    let (dom, log) = browse(
        chromium,
        &dir.join(format!("{name}-profile-probe")),
        &format!("file://{}", file.display()),
        &["--dump-dom"],
    );
    no_console(&log, name);
    let start = dom.find("<pre id=\"probe\">").unwrap_or_else(|| panic!("the probe did not run on {name}")) + 16;
    let end = start + dom[start..].find("</pre>").unwrap();
    let json = dom[start..end].replace("&quot;", "\"").replace("&amp;", "&").replace("&lt;", "<").replace("&gt;", ">");
    let found: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(found["resources"], serde_json::json!([]), "{name} loaded resources");
    assert_eq!(found["violations"], serde_json::json!([]), "{name} tried to load something");
    let charts = found["charts"].as_array().unwrap();
    for signal in signals {
        assert!(charts.iter().any(|c| c["signal"] == *signal), "{name}: no chart of {signal}");
    }
    let mut markers = 0;
    for chart in charts {
        assert!(chart["width"].as_f64().unwrap() > 300.0 && chart["height"].as_f64().unwrap() > 100.0, "{chart}");
        for m in chart["markers"].as_array().unwrap() {
            let (x, expected) = (m["x"].as_f64().unwrap(), m["expected"].as_f64().unwrap());
            assert!((x - expected).abs() <= 1.5, "{name}: marker {m} drawn at {x}, its time is at {expected}");
            markers += 1;
        }
    }
    assert!(markers > 0, "{name}: no finding marker at all");
    found
}

fn http_get(addr: &str, path: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer.split_once("\r\n\r\n").map(|(_, body)| body.to_owned()).unwrap_or_default()
}

fn http_post(addr: &str, path: &str, body: &str) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/x-ndjson\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[test]
fn the_report_and_the_dashboard_render_in_a_browser_and_fetch_nothing() {
    let Some(chromium) = chromium() else {
        eprintln!("SKIPPED: chromium is not on the PATH (`apt-get install chromium`; .ci/run installs it)");
        return;
    };
    let dir = scratch("browser");
    let out = bin().args(["demo", "--dir"]).arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let report = std::fs::read_to_string(dir.path().join("report.html")).unwrap();

    // The report as it is: a screenshot, and not a word on the console.
    let shot = dir.path().join("report.png");
    let url = format!("file://{}", dir.path().join("report.html").display());
    let (_, log) =
        browse(&chromium, &dir.path().join("profile-report"), &url, &[&format!("--screenshot={}", shot.display())]);
    no_console(&log, "the report");
    assert!(std::fs::metadata(&shot).unwrap().len() > 10_000, "the screenshot is empty");
    probe(&chromium, dir.path(), &report, &["metrics.accuracy", "latency_ms"], "report");

    // The dashboard of a real daemon, fed the demo's records over HTTP.
    let config = std::fs::read_to_string(dir.path().join("monitor.toml")).unwrap();
    std::fs::write(dir.path().join("serve.toml"), config.split("[[observers]]").next().unwrap()).unwrap();
    let mut child = bin()
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(dir.path().join("serve.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    let addr = first.trim().strip_prefix("listening on http://").unwrap().to_owned();
    let records = std::fs::read_to_string(dir.path().join("records.ndjson")).unwrap();
    http_post(&addr, "/v1/records", &records);
    let mut page = String::new();
    for _ in 0..100 {
        page = http_get(&addr, "/models/fraud");
        if page.contains("class=\"marker drift\"") {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let index = http_get(&addr, "/");
    assert!(index.contains("href=\"/models/fraud\"") && index.contains("http-equiv=\"refresh\""), "{index}");
    let (dom, log) = browse(
        &chromium,
        &dir.path().join("profile-dashboard"),
        &format!("http://{addr}/models/fraud"),
        &["--dump-dom"],
    );
    no_console(&log, "the dashboard");
    assert!(dom.contains("data-signal=\"metrics.accuracy\""), "the dashboard has no accuracy chart");
    let (_, log) = browse(
        &chromium,
        &dir.path().join("profile-dashboard-shot"),
        &format!("http://{addr}/"),
        &[&format!("--screenshot={}", dir.path().join("dashboard.png").display())],
    );
    no_console(&log, "the dashboard's list of models");
    probe(&chromium, dir.path(), &page, &["metrics.accuracy", "latency_ms"], "dashboard");
    // The daemon saw only the pages themselves: no favicon, nothing else.
    let metrics = http_get(&addr, "/metrics");
    let unmatched: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("model_monitor_http_requests_total") && l.contains("unmatched"))
        .collect();
    assert!(unmatched.is_empty(), "requests for something not served: {unmatched:?}");
    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    assert!(child.wait().unwrap().success());
}
