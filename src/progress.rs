//! What the user sees while a run goes on and when it ends: a redrawn table of nodes on a
//! terminal, log lines otherwise, and the figures of a run that succeeded.

use sluice::report::thousands;
use sluice::runtime::Event;
use sluice::runtime::events::EventStream;
use sluice::runtime::executor::{Progress, RunReport};

/// Shows progress until the run ends: a table redrawn at every progress event (about ten a
/// second) on a terminal, log lines otherwise. Gives back the sinks' "wrote ..." lines, to
/// be shown once the outputs are committed. A failing node is not reported here: the run's
/// error names it, once.
pub fn watch(events: EventStream, interactive: bool, quiet: bool) -> Vec<String> {
    let mut drawn = 0usize;
    let mut wrote = Vec::new();
    for event in events {
        match event {
            Event::Log { node, message } if !quiet && message.starts_with("wrote ") => {
                wrote.push(format!("[{node}] {message}"));
            }
            Event::Log { node, message } if !quiet => {
                clear(&mut drawn);
                eprintln!("[{node}] {message}");
            }
            Event::MemoryPressureChanged { level, rss, limit } if !quiet => {
                clear(&mut drawn);
                eprintln!("memory {level}: {} MiB of {} MiB", rss >> 20, limit >> 20);
            }
            Event::Progress(p) if interactive => {
                clear(&mut drawn);
                let s = table(&p);
                drawn = s.lines().count();
                eprint!("{s}");
            }
            _ => {}
        }
    }
    clear(&mut drawn);
    wrote
}

/// The live table: elapsed time, then a line per node with its counts, the CPU time spent
/// on it so far (its thread and its pool work) and its state.
fn table(p: &Progress) -> String {
    let mut s = format!("elapsed {:.1}s\n", p.elapsed.as_secs_f64());
    for n in &p.nodes {
        let out: u64 = n.features_out.iter().map(|c| c.features).sum();
        s.push_str(&format!(
            "  {:<24} {:>12} in {:>12} out {:>8.1}s busy  {}\n",
            n.id,
            n.features_in,
            out,
            n.busy_ms / 1e3,
            n.state.name()
        ));
    }
    s
}

fn clear(drawn: &mut usize) {
    if *drawn > 0 {
        eprint!("\x1b[{}A\x1b[J", *drawn);
        *drawn = 0;
    }
}

/// Prints the figures of a run that succeeded: a line per node (counts, wall time from its
/// start to its end, CPU time spent on it), a line per port that
/// features were sent to with no edge (they were dropped), then time and peak memory.
pub fn summary(report: &RunReport) {
    for n in &report.nodes {
        let dropped = match n.features_dropped {
            0 => String::new(),
            d => format!(" {d:>12} dropped"),
        };
        eprintln!(
            "  {:<24} {:<16} {:>12} in {:>12} out {:>9.1} ms {:>9.1} ms busy{dropped}",
            n.id, n.action, n.features_in, n.features_out, n.elapsed_ms, n.busy_ms
        );
    }
    for line in drop_lines(report) {
        eprintln!("{line}");
    }
    eprintln!(
        "done in {:.2}s, peak memory {} MiB",
        report.elapsed_ms / 1e3,
        report.peak_rss_bytes >> 20
    );
}

/// One line per node and port that dropped features, in node and port order:
/// `keep: 1,000,873 features left on unfiltered (not connected)`.
fn drop_lines(report: &RunReport) -> Vec<String> {
    report
        .nodes
        .iter()
        .flat_map(|n| {
            n.dropped.iter().filter(|d| d.features > 0).map(|d| {
                let s = if d.features == 1 { "" } else { "s" };
                format!(
                    "{}: {} feature{s} left on {} (not connected)",
                    n.id,
                    thousands(d.features),
                    d.port
                )
            })
        })
        .collect()
}

/// `n` with a comma between each group of three digits: `1,000,873`.
#[cfg(test)]
mod tests {
    use sluice::runtime::executor::{DroppedReport, NodeReport, RunReport};

    use super::drop_lines;
    use sluice::report::thousands;

    #[test]
    fn thousands_are_separated_by_commas() {
        let cases = [
            (0, "0"),
            (7, "7"),
            (999, "999"),
            (1_000, "1,000"),
            (12_345, "12,345"),
            (1_000_873, "1,000,873"),
            (u64::MAX, "18,446,744,073,709,551,615"),
        ];
        for (n, want) in cases {
            assert_eq!(thousands(n), want);
        }
    }

    fn node(id: &str, dropped: &[(&str, u64)]) -> NodeReport {
        NodeReport {
            id: id.into(),
            action: "filter".into(),
            features_in: 0,
            features_out: 0,
            ports: Vec::new(),
            features_dropped: dropped.iter().map(|(_, n)| n).sum(),
            dropped: dropped
                .iter()
                .map(|(port, features)| DroppedReport {
                    port: port.to_string(),
                    features: *features,
                    first_reason: None,
                })
                .collect(),
            elapsed_ms: 0.0,
            peak_reservation: 0,
            gate_wait_ms: 0.0,
            busy_ms: 0.0,
            thread_cpu_ms: 0.0,
            pool_cpu_ms: 0.0,
            timeline: Vec::new(),
        }
    }

    #[test]
    fn a_line_per_node_and_port_that_dropped() {
        let report = RunReport {
            workflow: None,
            ok: true,
            elapsed_ms: 0.0,
            peak_rss_bytes: 0,
            memory_limit_bytes: 0,
            peak_reserved_bytes: 0,
            spill_files: 0,
            spill_bytes: 0,
            gate_wait_ms: 0.0,
            nodes: vec![
                node("read", &[("rejected", 1)]),
                node("clean", &[]),
                node("keep", &[("unfiltered", 1_000_873), ("rejected", 12)]),
            ],
            edges: Vec::new(),
            memory: Default::default(),
        };
        assert_eq!(
            drop_lines(&report),
            [
                "read: 1 feature left on rejected (not connected)",
                "keep: 1,000,873 features left on unfiltered (not connected)",
                "keep: 12 features left on rejected (not connected)",
            ]
        );
    }
}
