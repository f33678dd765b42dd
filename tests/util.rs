use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

/// Whether expected files should be rewritten (`SLUICE_BLESS=1`).
pub fn bless() -> bool {
    std::env::var("SLUICE_BLESS").is_ok_and(|v| v == "1")
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the `sluice` binary with `args` in `cwd`, killing it after `timeout`.
pub fn sluice(cwd: &Path, args: &[&str], timeout: Duration) -> Output {
    let child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(cwd)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the sluice binary starts");
    wait_with_timeout(child, timeout)
}

/// Waits for a child process; kills it and fails the test after `timeout`.
pub fn wait_with_timeout(child: std::process::Child, timeout: Duration) -> Output {
    let id = child.id();
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(timeout) {
        Ok(out) => out.expect("waiting for sluice"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(id.to_string()).status();
            panic!("sluice did not finish within {timeout:?}");
        }
    }
}

/// Shows both texts in fenced blocks when they differ.
#[macro_export]
macro_rules! eqnice {
    ($expected:expr, $got:expr, $what:expr) => {{
        let (e, g) = (&$expected, &$got);
        if e != g {
            panic!(
                "\n{} differs\n\nexpected:\n```\n{}```\n\ngot:\n```\n{}```\n",
                $what, e, g
            );
        }
    }};
}

/// Files under `dir`, relative, sorted.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if let Ok(rel) = p.strip_prefix(dir) {
                out.push(rel.to_path_buf());
            }
        }
    }
    out.sort();
    out
}

/// Runs the `sluice` binary with `args` in `cwd`, `input` on its standard input, killing it
/// after `timeout`.
pub fn sluice_with_stdin(cwd: &Path, args: &[&str], input: &[u8], timeout: Duration) -> Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the sluice binary starts");
    let mut stdin = child.stdin.take().expect("stdin is piped");
    let input = input.to_vec();
    std::thread::spawn(move || {
        let _ = stdin.write_all(&input);
    });
    wait_with_timeout(child, timeout)
}

/// Starts the `sluice` binary in the background (output piped).
pub fn spawn_sluice(cwd: &Path, args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_sluice"))
        .args(args)
        .current_dir(cwd)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the sluice binary starts")
}

/// Sends signal `sig` (`INT`, `TERM`, `HUP`, `KILL`) to process `pid`.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .args([format!("-{sig}"), pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(ok.success(), "kill -{sig} {pid} failed");
}

/// A process's standard error, as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// A process's standard output, as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// `rows` generated W1 rows in `dir/in.csv` and `dir/wf.yaml` sorting them by value into
/// `out/sorted.csv`: a run that takes a while, and spills under a small memory limit.
pub fn sort_workflow(dir: &Path, rows: u64) {
    let o = sluice(
        dir,
        &[
            "generate",
            "w1",
            "--rows",
            &rows.to_string(),
            "--out",
            "in.csv",
        ],
        Duration::from_secs(120),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    std::fs::write(
        dir.join("wf.yaml"),
        "nodes:\n  - { id: read, action: csv_reader, with: { path: in.csv } }\n  - { id: order, action: sort, with: { by: [ { attribute: value } ] } }\n  - { id: write, action: csv_writer, with: { path: out/sorted.csv } }\nedges: [ read -> order, order -> write ]\n",
    )
    .unwrap();
}
