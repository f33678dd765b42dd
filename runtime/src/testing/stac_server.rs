//! The test STAC API server (`tests/http/stac_server.py`, Python's standard library only)
//! as a guard: started on 127.0.0.1 with a port of the system's choosing, killed when
//! dropped. Tests that need it skip, with a printed notice, where `python3` is missing.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A running test server; dropping it kills it.
pub struct StacServer {
    child: Child,
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its request log (one JSON object per line).
    pub log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The server script.
pub fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join("tests")
        .join("http")
        .join("stac_server.py")
}

/// Whether `python3` runs here (a notice is printed when it does not).
#[allow(clippy::print_stderr)]
pub fn python_available() -> bool {
    let ok = Command::new("python3")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        eprintln!("python3 is not available: skipping a test that needs the test STAC server");
    }
    ok
}

impl StacServer {
    /// Starts the server with `args` (see the script's docs); `None` (after a printed
    /// notice) when `python3` is missing. Panics when the server does not start.
    pub fn start(args: &[&str]) -> Option<StacServer> {
        if !python_available() {
            return None;
        }
        let dir = tempfile::tempdir().expect("a temporary folder");
        let log = dir.path().join("requests.jsonl");
        let mut child = Command::new("python3")
            .arg(script())
            .args(["--log", &log.to_string_lossy()])
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let port = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => line.trim().parse::<u16>().ok(),
            Err(_) => None,
        };
        let Some(port) = port else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("the test STAC server did not print its port");
        };
        Some(StacServer {
            child,
            port,
            log,
            _dir: dir,
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The requests logged so far, once the log stopped growing (a request is logged just
    /// after its answer was sent).
    pub fn requests(&self) -> Vec<serde_json::Value> {
        let mut last = String::new();
        loop {
            let _ = crossbeam_channel::after(Duration::from_millis(150)).recv();
            let text = std::fs::read_to_string(&self.log).unwrap_or_default();
            if text == last {
                return text
                    .lines()
                    .filter_map(|l| serde_json::from_str(l).ok())
                    .collect();
            }
            last = text;
        }
    }
}

impl Drop for StacServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
