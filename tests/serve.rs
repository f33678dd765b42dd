//! The live view's HTTP surface, against `sluice serve` and `sluice run --ui` on port 0.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

use crate::util::{files, root, sluice, sort_workflow, spawn_sluice, stderr, wait_with_timeout};

const T: Duration = Duration::from_secs(120);

/// A server started by the test, killed when dropped.
struct Served {
    child: Option<Child>,
    /// `127.0.0.1:PORT`.
    host: String,
}

impl Served {
    fn start(dir: &Path, args: &[&str]) -> Served {
        let mut child = spawn_sluice(dir, args);
        let out = child.stdout.take().expect("stdout is piped");
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(out).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(T)
            .expect("the server prints its URL on its first line");
        let host = line
            .trim()
            .strip_prefix("http://")
            .and_then(|s| s.strip_suffix('/'))
            .unwrap_or_else(|| panic!("not a URL: {line:?}"))
            .to_string();
        Served {
            child: Some(child),
            host,
        }
    }

    fn request(&self, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
        http(&self.host, method, path, headers)
    }

    fn get_json(&self, path: &str) -> (u16, serde_json::Value) {
        let (status, body) = self.request("GET", path, &[]);
        let v = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{path}: {e}: {body}"));
        (status, v)
    }

    /// The token the page holds.
    fn token(&self) -> String {
        let (status, page) = self.request("GET", "/", &[]);
        assert_eq!(status, 200);
        let at = page
            .find("name=\"sluice-token\" content=\"")
            .expect("the page has a token")
            + "name=\"sluice-token\" content=\"".len();
        page[at..at + 32].to_string()
    }

    /// Polls `/api/progress` until `done` says so.
    fn wait_for(&self, what: &str, done: impl Fn(&serde_json::Value) -> bool) -> serde_json::Value {
        let deadline = Instant::now() + T;
        loop {
            let (_, v) = self.get_json("/api/progress");
            if done(&v) {
                return v;
            }
            assert!(Instant::now() < deadline, "{what} never happened: {v}");
            pause(Duration::from_millis(20));
        }
    }

    fn wait(mut self) -> (ExitStatus, String) {
        let child = self.child.take().unwrap();
        let o = wait_with_timeout(child, T);
        (o.status, stderr(&o))
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn pause(d: Duration) {
    let (_never, wait) = crossbeam_channel::bounded::<()>(0);
    let _ = wait.recv_timeout(d);
}

/// One HTTP/1.0 request (the answer ends when the connection closes), with `Host`.
fn http(host: &str, method: &str, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut s = TcpStream::connect(host).expect("the server accepts");
    s.set_read_timeout(Some(T)).unwrap();
    let has_host = headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host"));
    let mut req = format!("{method} {path} HTTP/1.0\r\n");
    if !has_host {
        req.push_str(&format!("Host: {host}\r\n"));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("Content-Length: 0\r\n\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map_or(String::new(), |(_, b)| b.to_string());
    (status, body)
}

/// The events of `/api/events` until `until` has been seen (or the stream ends).
fn events_until(host: &str, until: &str) -> Vec<(String, serde_json::Value)> {
    let mut s = TcpStream::connect(host).unwrap();
    s.set_read_timeout(Some(T)).unwrap();
    write!(s, "GET /api/events HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut lines = BufReader::new(s).lines();
    let mut out = Vec::new();
    let mut name = String::new();
    while let Some(Ok(line)) = lines.next() {
        if let Some(n) = line.strip_prefix("event: ").or(line.strip_prefix("event:")) {
            name = n.trim().to_string();
        } else if let Some(d) = line.strip_prefix("data: ").or(line.strip_prefix("data:")) {
            let v: serde_json::Value = serde_json::from_str(d).unwrap();
            let done = name == until;
            out.push((std::mem::take(&mut name), v));
            if done {
                break;
            }
        }
    }
    out
}

fn quickstart(dir: &Path) -> String {
    let wf = root().join("workflows/quickstart.yaml");
    std::fs::create_dir_all(dir.join("out")).unwrap();
    wf.display().to_string()
}

#[test]
fn graph_progress_events_preview_and_a_second_run() {
    let dir = tempfile::tempdir().unwrap();
    let wf = quickstart(dir.path());
    let out = format!("out_dir={}", dir.path().join("out").display());
    let served = Served::start(
        dir.path(),
        &["serve", &wf, "--var", &out, "--capture", "all"],
    );
    let done = served.wait_for("the first run's end", |v| v["status"] == "succeeded");
    assert_eq!(done["run"], 1);

    // The graph: every node placed, every edge left to right, named as --capture names them.
    let (status, graph) = served.get_json("/api/graph");
    assert_eq!(status, 200);
    let nodes = graph["nodes"].as_array().unwrap();
    let edges = graph["edges"].as_array().unwrap();
    assert_eq!(nodes.len(), 6, "{graph}");
    assert!(edges.iter().any(|e| e["name"] == "read->enrich"));
    for e in edges {
        let (a, b) = (e["from"].as_u64().unwrap(), e["to"].as_u64().unwrap());
        let x = |i: u64| nodes[i as usize]["x"].as_f64().unwrap();
        assert!(x(a) < x(b), "edge {} goes right to left", e["name"]);
        assert_eq!(e["captured"], true);
    }

    // The snapshot agrees with the report: every edge's count.
    let report = &done["report"];
    let progress = &done["progress"];
    for (p, r) in progress["edges"]
        .as_array()
        .unwrap()
        .iter()
        .zip(report["edges"].as_array().unwrap())
    {
        assert_eq!(p["features"], r["features"], "{p} vs {r}");
    }
    assert_eq!(progress["edges"][0]["features"], 2000);
    assert!(
        progress["nodes"]
            .as_array()
            .unwrap()
            .iter()
            .all(|n| n["state"] == "done")
    );

    // A page that connects now gets the whole state first.
    let (status, events) = http(&served.host, "GET", "/api/progress", &[]);
    assert_eq!(status, 200, "{events}");
    let first = events_until(&served.host, "snapshot");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].1["status"], "succeeded");

    // Preview: the captured features, by index or by name.
    let (status, p) = served.get_json("/api/preview/0?limit=3");
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["edge"], "read->enrich");
    assert_eq!(p["features"], 2000);
    assert_eq!(p["rows"].as_array().unwrap().len(), 3);
    assert_eq!(p["columns"][0], "id");
    assert_eq!(p["rows"][1][0], "1");
    let (status, by_name) = served.get_json("/api/preview/read-%3Eenrich?offset=1&limit=1");
    assert_eq!(status, 200, "{by_name}");
    assert_eq!(by_name["rows"][0], p["rows"][1]);
    // Anything else is not found, and nothing outside the job is read.
    for bad in [
        "/api/preview/99",
        "/api/preview/nope",
        "/api/preview/..%2F..%2Fmanifest.json",
        "/api/preview/..%2F..%2F..%2Fetc%2Fpasswd",
    ] {
        let (status, body) = served.request("GET", bad, &[]);
        assert_eq!(status, 404, "{bad}: {body}");
    }

    // State changes need the token; the wrong Host is refused.
    let token = served.token();
    assert_eq!(served.request("POST", "/api/run", &[]).0, 403);
    assert_eq!(
        served
            .request("POST", "/api/cancel", &[("x-sluice-token", "0123")])
            .0,
        403
    );
    assert_eq!(
        served
            .request("GET", "/api/progress", &[("Host", "evil.example:80")])
            .0,
        421
    );
    assert_eq!(
        served
            .request("POST", "/api/cancel", &[("x-sluice-token", &token)])
            .0,
        409,
        "nothing runs now"
    );
    let (status, body) = served.request("POST", "/api/run", &[("x-sluice-token", &token)]);
    assert_eq!(status, 202, "{body}");
    let again = served.wait_for("the second run's end", |v| {
        v["run"] == 2 && v["status"] == "succeeded"
    });
    assert_eq!(again["progress"]["edges"][0]["features"], 2000);
    // The second run captured into a folder of its own.
    assert_ne!(again["job"], done["job"]);
}

#[cfg(unix)]
#[test]
fn cancel_from_the_page_needs_the_token_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    sort_workflow(dir.path(), 400_000);
    let served = Served::start(dir.path(), &["run", "wf.yaml", "--ui", "--quiet"]);
    served.wait_for("features flowing", |v| {
        v["status"] == "running" && v["progress"]["edges"][0]["features"].as_u64() > Some(0)
    });
    assert_eq!(served.request("POST", "/api/cancel", &[]).0, 403);
    let token = served.token();
    let (status, body) = served.request("POST", "/api/cancel", &[("x-sluice-token", &token)]);
    assert_eq!(status, 200, "{body}");
    let (code, err) = served.wait();
    assert_eq!(code.code(), Some(130), "{err}");
    assert!(err.contains("run cancelled"), "{err}");
    let left: Vec<_> = files(dir.path())
        .into_iter()
        .filter(|f| f != Path::new("in.csv") && f != Path::new("wf.yaml"))
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
}

#[test]
fn run_ui_ends_with_the_run_and_its_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let wf = quickstart(dir.path());
    let out = format!("out_dir={}", dir.path().join("out").display());
    let served = Served::start(
        dir.path(),
        &["run", &wf, "--var", &out, "--ui", "--report", "run.json"],
    );
    let (code, err) = served.wait();
    assert!(code.success(), "{err}");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("run.json")).unwrap())
            .unwrap();
    assert_eq!(report["ok"], true);
}

#[test]
fn an_invalid_workflow_shows_its_diagnostics_instead_of_a_graph() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("wf.yaml"),
        "nodes:\n  - { id: read, action: csv_reader, with: { path: in.csv } }\n  - { id: keep, action: filter, with: { conditions: [ { port: big, expresion: \"x > 1\" } ] } }\nedges: [ read -> keep ]\n",
    )
    .unwrap();
    let served = Served::start(dir.path(), &["serve", "wf.yaml"]);
    let state = served.wait_for("the validation", |v| v["status"] == "invalid");
    let d = &state["validation"]["diagnostics"];
    assert!(
        d.as_array().unwrap().iter().any(|d| d["line"] == 3
            && d["node"] == "keep"
            && d["message"].as_str().unwrap().contains("expresion")),
        "{d}"
    );
    let (status, graph) = served.get_json("/api/graph");
    assert_eq!(status, 404);
    assert_eq!(graph["validation"]["valid"], false);
}

#[test]
fn a_port_in_use_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let wf = quickstart(dir.path());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let o = sluice(dir.path(), &["serve", &wf, "--port", &port], T);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains(&format!("port {port} is in use")), "{err}");
}

#[test]
fn event_streams_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let wf = quickstart(dir.path());
    let served = Served::start(dir.path(), &["serve", &wf, "--no-start"]);
    let mut open = Vec::new();
    for _ in 0..16 {
        let mut s = TcpStream::connect(&served.host).unwrap();
        write!(
            s,
            "GET /api/events HTTP/1.0\r\nHost: {}\r\n\r\n",
            served.host
        )
        .unwrap();
        let mut r = BufReader::new(s);
        let mut line = String::new();
        r.read_line(&mut line).unwrap();
        assert!(line.contains(" 200 "), "{line}");
        open.push(r);
    }
    let (status, body) = served.request("GET", "/api/events", &[]);
    assert_eq!(status, 503, "{body}");
    // One closes: a new one is let in, and gets the state first.
    drop(open.pop());
    let deadline = Instant::now() + T;
    loop {
        let first = events_until(&served.host, "snapshot");
        if first.len() == 1 {
            assert_eq!(first[0].1["status"], "idle");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the closed stream's slot never came back"
        );
        pause(Duration::from_millis(20));
    }
}

#[test]
fn a_failed_node_s_error_is_in_the_state() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("in.csv"), "a\n1\n").unwrap();
    std::fs::write(dir.path().join("blocker"), "a file, not a folder").unwrap();
    std::fs::write(
        dir.path().join("wf.yaml"),
        "nodes:\n  - { id: read, action: csv_reader, with: { path: in.csv } }\n  - { id: write, action: csv_writer, with: { path: blocker/out.csv } }\nedges: [ read -> write ]\n",
    )
    .unwrap();
    let served = Served::start(dir.path(), &["serve", "wf.yaml"]);
    let state = served.wait_for("the failure", |v| v["status"] == "failed");
    let error = state["failures"]["write"].as_str().unwrap_or_default();
    assert!(error.contains("not a directory"), "{state}");
    assert!(
        state["error"]
            .as_str()
            .unwrap_or_default()
            .contains("\"write\""),
        "the run's error names the node: {state}"
    );
    let states: Vec<&str> = state["progress"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["state"].as_str().unwrap())
        .collect();
    assert_eq!(states[1], "failed", "{states:?}");
}
