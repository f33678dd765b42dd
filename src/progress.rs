//! What the user sees while a run goes on and when it ends: a redrawn table of nodes on a
//! terminal, log lines otherwise, and the figures of a run that succeeded.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError};
use sluice::runtime::Event;
use sluice::runtime::executor::{RunHandle, RunReport};

/// Shows progress until the run ends: a redrawn table on a terminal, log lines otherwise.
/// Gives back the sinks' "wrote ..." lines, to be shown once the outputs are committed.
/// A failing node is not reported here: the run's error names it, once.
pub fn watch(
    handle: &RunHandle,
    rx: &Receiver<Event>,
    interactive: bool,
    quiet: bool,
) -> Vec<String> {
    let mut drawn = 0usize;
    let mut wrote = Vec::new();
    loop {
        match rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Event::RunFinished { .. }) => break,
            Ok(Event::Log { node, message }) if !quiet && message.starts_with("wrote ") => {
                wrote.push(format!("[{node}] {message}"));
            }
            Ok(Event::Log { node, message }) if !quiet => {
                clear(&mut drawn);
                eprintln!("[{node}] {message}");
            }
            Ok(Event::MemoryPressureChanged { level, rss, limit }) if !quiet => {
                clear(&mut drawn);
                eprintln!("memory {level}: {} MiB of {} MiB", rss >> 20, limit >> 20);
            }
            Ok(_) => {}
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
        if interactive {
            clear(&mut drawn);
            let mut s = format!("elapsed {:.1}s\n", handle.elapsed().as_secs_f64());
            for p in handle.progress() {
                let state = match p.state.load(Ordering::Relaxed) {
                    0 => "running",
                    1 => "done",
                    _ => "failed",
                };
                s.push_str(&format!(
                    "  {:<24} {:>12} in {:>12} out  {state}\n",
                    p.id,
                    p.features_in.load(Ordering::Relaxed),
                    p.out()
                ));
            }
            drawn = s.lines().count();
            eprint!("{s}");
        }
        if handle.is_finished() && rx.is_empty() {
            break;
        }
    }
    clear(&mut drawn);
    wrote
}

fn clear(drawn: &mut usize) {
    if *drawn > 0 {
        eprint!("\x1b[{}A\x1b[J", *drawn);
        *drawn = 0;
    }
}

/// Prints the figures of a run that succeeded: a line per node, then time and peak memory.
pub fn summary(report: &RunReport) {
    for n in &report.nodes {
        let dropped = match n.features_dropped {
            0 => String::new(),
            d => {
                let ports: Vec<String> = n
                    .dropped
                    .iter()
                    .map(|p| format!("{} {}", p.port, p.features))
                    .collect();
                format!(" {d:>12} dropped ({})", ports.join(", "))
            }
        };
        eprintln!(
            "  {:<24} {:<16} {:>12} in {:>12} out {:>9.1} ms{dropped}",
            n.id, n.action, n.features_in, n.features_out, n.elapsed_ms
        );
    }
    eprintln!(
        "done in {:.2}s, peak memory {} MiB",
        report.elapsed_ms / 1e3,
        report.peak_rss_bytes >> 20
    );
}
