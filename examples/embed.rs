//! Embedding the runtime: validate a workflow from a string, start it with an edge captured,
//! watch its events, get the report, and preview the captured edge. Run with
//! `cargo run --example embed`.

use sluice::runtime::capture::{CaptureEdges, CaptureOptions, Job};
use sluice::runtime::events::EventSender;
use sluice::runtime::executor::{self, RunOptions};
use sluice::runtime::workflow::{self, VarSources};
use sluice::runtime::{Event, Severity};

const WORKFLOW: &str = r#"
name: embedded
nodes:
  - id: make
    action: feature_creator
    with:
      features: [ { city: Oslo, pop: 709000 }, { city: Bergen, pop: 291000 }, { city: Tromsø, pop: 78000 } ]
      repeat: 1000
  - id: big
    action: filter
    with: { expression: "pop > 100000" }
  - id: drop
    action: noop_sink
edges: [ make -> big, big.passed -> drop ]
"#;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let registry = sluice::actions::registry();
    // 1. Validate: structured diagnostics, all at once.
    let plan = match workflow::load("embedded.yaml", WORKFLOW, &registry, &VarSources::default()) {
        Ok(plan) => plan,
        Err(e) => {
            for d in e
                .diagnostics
                .iter()
                .filter(|d| d.severity == Severity::Error)
            {
                eprintln!("{} (line {}, node {:?})", d.message, d.line, d.node);
            }
            return Err(e.into());
        }
    };
    // 2. Start with an event channel (the handle can cancel), capturing the filter's
    //    output into a job folder (here in memory; a path or s3:// works the same).
    let (events, stream) = EventSender::stream();
    let job = format!("memory://embed/job-{}", std::process::id());
    let options = RunOptions {
        events,
        capture: Some(CaptureOptions::new(
            job.clone(),
            CaptureEdges::Named(vec!["big.passed->drop".into()]),
        )),
        ..RunOptions::default()
    };
    let handle = executor::start(plan, options)?;
    // 3. Watch events until the run ends (the stream ends with `RunFinished`). Sending never
    //    waits for this loop: were it slow, samples would be dropped and counted.
    for event in stream {
        match event {
            Event::NodeFinished {
                node,
                features_in,
                features_out,
                dropped,
                ..
            } => {
                println!("{node}: {features_in} in, {features_out} out");
                // Features sent to a port with no edge: counted, per port, never hidden.
                for d in dropped {
                    println!("{node}: {} dropped on {} (no edge)", d.features, d.port);
                }
            }
            Event::RunFinished { ok, elapsed } => {
                println!("run finished ok={ok} in {elapsed:?}");
                break;
            }
            _ => {}
        }
    }
    // 4. The report: counts per node and edge, timings, memory.
    let report = handle.wait()?;
    println!("{}", serde_json::to_string_pretty(&report.edges)?);
    // 5. Preview: what crossed the captured edge (a running job can be read the same way;
    //    it lists the files that have landed).
    let job = Job::open(&job)?;
    for edge in job.edges() {
        println!(
            "{}: {} features, complete: {}",
            edge.name, edge.features, edge.complete
        );
    }
    for f in job.read("big.passed->drop", 1000, 3)? {
        println!("  #{}: {:?}", f.id(), f.attributes().collect::<Vec<_>>());
    }
    Ok(())
}
