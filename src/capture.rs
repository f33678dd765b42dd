//! The command line's side of capture: `run --capture/--job-dir/--from` and `inspect`.

use std::process::ExitCode;

use sluice::inspect::{self, Format};
use sluice::runtime::capture::{self, CaptureEdges, CaptureOptions, Job};
use sluice::runtime::dag::Plan;
use sluice::runtime::journal::JournalOptions;

/// What `run` does about capture.
pub struct Capture {
    /// What the run captures, if anything.
    pub options: Option<CaptureOptions>,
    /// The plan to run (cut down with --from).
    pub plan: Plan,
}

/// The capture of a run: `--capture` and `--job-dir` (or edges the workflow marks, which
/// go to a new job folder), or, with `--from`, the plan cut down to re-run from a job.
/// Errors are the message for the user.
pub fn prepare(
    plan: Plan,
    edges: Option<&str>,
    job_dir: Option<&str>,
    from: Option<&str>,
) -> Result<Capture, String> {
    if let Some(node) = from {
        let dir = job_dir.ok_or("--from needs --job-dir, the job to re-run from")?;
        let job = Job::open(dir).map_err(|e| e.to_string())?;
        let rerun =
            capture::rerun_from(plan, &job, node).map_err(|e| format!("--from {node}: {e}"))?;
        for w in &rerun.warnings {
            eprintln!("warning: {w}");
        }
        return Ok(Capture {
            options: None,
            plan: rerun.plan,
        });
    }
    let which = match edges {
        Some(list) => CaptureEdges::parse(list),
        None => CaptureEdges::Marked,
    };
    if let CaptureEdges::Named(names) = &which
        && names.is_empty()
    {
        return Err(
            "--capture: give `all` or edge names (`sluice graph --edges` lists them)".into(),
        );
    }
    let selected = capture::select_edges(&plan, &which).map_err(|e| format!("--capture: {e}"))?;
    let options = if edges.is_some() || job_dir.is_some() || !selected.is_empty() {
        Some(CaptureOptions::new(
            job_dir.map_or_else(new_job_dir, str::to_string),
            which,
        ))
    } else {
        None
    };
    Ok(Capture { options, plan })
}

/// The journals of a run with `--job-dir` (a local folder: `DIR/journal/<node>/`), which
/// `--resume` replays. A job folder in an object store keeps no journal (`--resume` there
/// is refused).
pub fn journal(job_dir: Option<&str>, resume: bool) -> Result<Option<JournalOptions>, String> {
    let Some(dir) = job_dir else {
        return Ok(None);
    };
    let local = match dir.strip_prefix("file://") {
        Some(p) => Some(p),
        None if dir.contains("://") => None,
        None => Some(dir),
    };
    match local {
        Some(p) => {
            if resume && !std::path::Path::new(p).is_dir() {
                return Err(format!(
                    "--resume: {dir} is not a folder; give the --job-dir of the run to resume"
                ));
            }
            Ok(Some(JournalOptions::new(p, resume)))
        }
        None if resume => Err(format!(
            "--resume needs a local --job-dir (journals are local files), not {dir}"
        )),
        None => Ok(None),
    }
}

/// A new folder under `.sluice/jobs/`, named by the time and process (and a number when a
/// run of the same second already has that name: a live view runs again at a click).
fn new_job_dir() -> String {
    let base = format!(
        ".sluice/jobs/{}-{}",
        chrono::Utc::now().format("%Y%m%d-%H%M%S"),
        std::process::id()
    );
    (1..)
        .map(|n| match n {
            1 => base.clone(),
            n => format!("{base}-{n}"),
        })
        .find(|d| !std::path::Path::new(d).exists())
        .unwrap_or(base)
}

/// Says where the capture went, and how the job ended (the manifest says which edges
/// completed).
pub fn report(options: &CaptureOptions) {
    match Job::open(&options.job) {
        Ok(job) => {
            let complete = job.edges().iter().filter(|e| e.complete).count();
            eprintln!(
                "captured {complete} of {} edge(s) to {} (job {}); see them with: sluice inspect {}",
                job.edges().len(),
                job.location(),
                job.manifest().state,
                job.location()
            );
        }
        Err(e) => eprintln!("capture: {e}"),
    }
}

/// `sluice inspect`.
pub fn inspect(
    job: &str,
    edge: Option<&str>,
    offset: u64,
    limit: usize,
    format: Format,
) -> Result<(String, ExitCode), String> {
    let job = Job::open(job).map_err(|e| e.to_string())?;
    match edge {
        None => Ok((inspect::edges_table(&job), ExitCode::SUCCESS)),
        Some(edge) => {
            let features = job.read(edge, offset, limit).map_err(|e| e.to_string())?;
            if features.is_empty() {
                // Said on standard error, so a CSV or JSON-lines consumer reads nothing.
                let entry = job.edge(edge).map_err(|e| e.to_string())?;
                eprintln!(
                    "edge \"{}\" has {} feature(s); none after offset {offset}{}",
                    entry.name,
                    entry.features,
                    if entry.complete {
                        ""
                    } else {
                        " (its capture is not complete)"
                    }
                );
                return Ok((String::new(), ExitCode::SUCCESS));
            }
            Ok((inspect::render(&features, format), ExitCode::SUCCESS))
        }
    }
}
