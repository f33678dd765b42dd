//! The `sluice` command: a thin shell over the runtime (argument parsing, progress, exit
//! codes). Exit codes: 0 ok, 1 invalid workflow or usage, 2 run failed, 130 interrupted
//! (SIGINT), 143 terminated (SIGTERM), 129 hung up (SIGHUP). Output to a closed pipe
//! (`sluice actions | head`) ends quietly with 0.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use sluice::runtime::executor::{self, CancelToken, RunOptions, RunReport};
use sluice::runtime::memory::{GatePolicy, parse_size};
use sluice::runtime::store::CommitError;
use sluice::runtime::workflow::{self, VarSources};
use sluice::runtime::{ActionError, Event, RunError, ValidationError, events::EventSender};

/// mimalloc: features are allocated on reader threads and freed on sink threads; mimalloc is
/// fast at such cross-thread frees and, tuned by [`tune_allocator`], gives freed memory back
/// to the OS at once, so resident memory follows what the run really holds (measured on W1 at
/// 64 MB: about 64 MB peak RSS instead of about 100 MB with the system allocator).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's option numbers (`mi_option_e`, the same in its v2 and v3 headers).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
/// `mi_option_allow_thp` (v3, the version built). Transparent huge pages make each node
/// thread's small pages 2 MiB of resident memory (a 200-node chain at 64 MB: about 160 MB
/// peak RSS with them, about 40 MB without). The option only stops later `madvise` calls; the
/// arena mimalloc made before `main` is covered by `PR_SET_THP_DISABLE`.
const MI_OPTION_ALLOW_THP: libmimalloc_sys::mi_option_t = 43;
#[cfg(target_os = "linux")]
const PR_SET_THP_DISABLE: std::ffi::c_int = 41;

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
unsafe extern "C" {
    fn prctl(option: std::ffi::c_int, ...) -> std::ffi::c_int;
}

/// Purge freed memory immediately and commit arena memory only when used.
#[allow(unsafe_code)]
fn tune_allocator() {
    // SAFETY: `mi_option_set` stores a plain option value; it has no pointer arguments and is
    // called first thing in `main`, before any other thread exists.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_ALLOW_THP, 0);
        // Plain integer arguments (all five: the kernel refuses non-zero unused ones);
        // failure (an old kernel) leaves THP as it was.
        #[cfg(target_os = "linux")]
        {
            let zero: std::ffi::c_ulong = 0;
            prctl(PR_SET_THP_DISABLE, 1 as std::ffi::c_ulong, zero, zero, zero);
        }
    }
}

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Run dataflow workflows over features (YAML in, files out)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate and run a workflow.
    Run {
        /// The workflow file (YAML or JSON).
        file: PathBuf,
        /// Set a variable: --var name=value (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Write the run report (counts, timings, memory) as JSON.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Memory limit for the run, e.g. 64MB or 2GiB (default: half the machine's memory).
        #[arg(long, value_name = "SIZE")]
        memory_limit: Option<String>,
        /// Threads in the shared pool (default: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Features per batch on edges.
        #[arg(long, default_value_t = 1024)]
        batch_size: usize,
        /// Heavy-finish admission: adaptive, semaphore:N or ungated.
        #[arg(long, default_value = "adaptive")]
        gate: String,
        /// Folder for spill files (default: the system temporary folder).
        #[arg(long, value_name = "DIR")]
        spill_dir: Option<PathBuf>,
        /// No progress display.
        #[arg(long, short)]
        quiet: bool,
        /// Fail (exit code 3) when a node rejected features and its `rejected` port has no
        /// edge (by default that is a warning).
        #[arg(long)]
        strict: bool,
    },
    /// Check a workflow and print every problem found.
    Validate {
        /// The workflow file.
        file: PathBuf,
        /// Set a variable: --var name=value (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
    },
    /// Print a workflow as a Graphviz DOT graph.
    Graph {
        /// The workflow file.
        file: PathBuf,
        /// Set a variable: --var name=value (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
    },
    /// List the actions (name, kind, ports, parameters).
    Actions {
        /// Print JSON with each action's parameter schema (for editors and UIs).
        #[arg(long)]
        json: bool,
    },
    /// Print the JSON Schema of the workflow format.
    Schema,
    /// Remove what killed runs left behind: spill folders and temporary outputs of
    /// processes that no longer run.
    Clean {
        /// The spill base folder (default: the system temporary folder).
        #[arg(long, value_name = "DIR")]
        spill_dir: Option<PathBuf>,
        /// Output files or folders whose folders to clean of temporary outputs.
        paths: Vec<PathBuf>,
    },
    /// Generate sample data.
    Generate {
        /// What to generate (w1: id,name,category,x,y,value,ts).
        #[arg(value_parser = ["w1"])]
        dataset: String,
        /// Rows to write.
        #[arg(long, default_value_t = 2_000_000)]
        rows: u64,
        /// Seed of the generator.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// Output CSV file.
        #[arg(long)]
        out: PathBuf,
    },
}

fn main() -> ExitCode {
    tune_allocator();
    // Usage errors exit 1 (clap's default is 2, which means "the run failed" here).
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => {
                    ExitCode::SUCCESS
                }
                _ => ExitCode::from(1),
            };
        }
    };
    match run(cli) {
        Ok(code) => code,
        // The reader of our output went away (`| head`): stop quietly, as Unix tools do.
        Err(e) if is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// Writes to standard output through its lock; a closed pipe is an error [`main`] turns
/// into a quiet exit (where `println!` would panic).
fn out(text: &str) -> std::io::Result<()> {
    let mut o = std::io::stdout().lock();
    o.write_all(text.as_bytes())?;
    o.flush()
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let registry = sluice::actions::registry();
    match cli.command {
        Command::Run {
            file,
            vars,
            report,
            memory_limit,
            threads,
            batch_size,
            gate,
            spill_dir,
            quiet,
            strict,
        } => {
            // Before any thread starts: every later thread inherits the blocked signals,
            // and one thread takes them (cancel, clean up, exit 130/143/129).
            let cancel = CancelToken::new();
            let signal = signals::catch(cancel.clone())?;
            let Some(vars) = parse_vars(&vars) else {
                return Ok(ExitCode::from(1));
            };
            let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
            if threads > cores * 4 {
                eprintln!(
                    "error: --threads {threads}: at most {} on this machine ({cores} cores × 4)",
                    cores * 4
                );
                return Ok(ExitCode::from(1));
            }
            if let Some(p) = &report
                && let Err(e) = check_writable(p)
            {
                eprintln!("error: --report {}: {e}", p.display());
                return Ok(ExitCode::from(1));
            }
            let plan = match workflow::load_file(&file, &registry, &vars) {
                Ok(p) => p,
                Err(e) => return Ok(invalid(&e)),
            };
            for w in &plan.warnings {
                eprintln!("{w}");
            }
            let memory_limit = match memory_limit.as_deref().map(parse_size).transpose() {
                Ok(Some(0)) => {
                    eprintln!("error: --memory-limit 0: the limit must be above 0 (e.g. 64MB)");
                    return Ok(ExitCode::from(1));
                }
                Ok(m) => m,
                Err(e) => {
                    eprintln!("error: --memory-limit: {e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let gate: GatePolicy = match gate.parse() {
                Ok(g) => g,
                Err(e) => {
                    eprintln!("error: --gate: {e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let (tx, rx) = crossbeam_channel_unbounded();
            let options = RunOptions {
                batch_size,
                threads,
                memory_limit,
                gate,
                spill_dir,
                events: EventSender::channel(tx),
                cancel,
                ..RunOptions::default()
            };
            let handle = match executor::start(plan, options) {
                Ok(h) => h,
                // The limit cannot hold this workflow: nothing ran; the message names the
                // minimum.
                Err(RunError::MemoryLimitTooSmall(e)) => {
                    eprintln!("error: {e}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            };
            let interactive = !quiet && std::io::stderr().is_terminal();
            let wrote = watch(&handle, &rx, interactive, quiet);
            let result = handle.wait();
            let result = match result {
                Err(RunError::Cancelled) => {
                    eprintln!("run cancelled; no output was written");
                    return Ok(ExitCode::from(signal.exit_code()));
                }
                Ok(_) if !quiet => {
                    // Said only now that the outputs are in place.
                    for line in wrote {
                        eprintln!("{line}");
                    }
                    result
                }
                other => other,
            };
            finish(result, report.as_deref(), quiet, strict)
        }
        Command::Validate { file, vars } => {
            let Some(vars) = parse_vars(&vars) else {
                return Ok(ExitCode::from(1));
            };
            match workflow::load_file(&file, &registry, &vars) {
                Ok(plan) => {
                    for w in &plan.warnings {
                        eprintln!("{w}");
                    }
                    out(&format!(
                        "{}: ok ({} nodes, {} edges)\n",
                        file.display(),
                        plan.nodes.len(),
                        plan.edges.len()
                    ))?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(invalid(&e)),
            }
        }
        Command::Graph { file, vars } => {
            let Some(vars) = parse_vars(&vars) else {
                return Ok(ExitCode::from(1));
            };
            match workflow::load_file(&file, &registry, &vars) {
                Ok(plan) => {
                    out(&plan.to_dot())?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(invalid(&e)),
            }
        }
        Command::Actions { json } => {
            if json {
                let list: Vec<_> = registry.specs().map(|s| s.to_json()).collect();
                out(&format!("{}\n", serde_json::to_string_pretty(&list)?))?;
            } else {
                for s in registry.specs() {
                    let kind = format!("{:?}", s.kind).to_lowercase();
                    out(&format!(
                        "{:<18} {:<9} in: {:<22} out: {:<28} {}\n",
                        s.name,
                        kind,
                        s.inputs.join(","),
                        if s.dynamic_outputs {
                            format!("{} (+ from parameters)", s.outputs.join(","))
                        } else {
                            s.outputs.join(",")
                        },
                        s.description
                    ))?;
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Schema => {
            out(&format!(
                "{}\n",
                serde_json::to_string_pretty(&workflow::json_schema(&registry))?
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Clean { spill_dir, paths } => {
            let base = spill_dir.unwrap_or_else(std::env::temp_dir);
            let mut done = sluice::runtime::store::stale::clean_spill_base(&base);
            for p in &paths {
                let folder = if p.is_dir() {
                    p.as_path()
                } else {
                    match p.parent().filter(|d| !d.as_os_str().is_empty()) {
                        Some(d) => d,
                        None => Path::new("."),
                    }
                };
                done.extend(sluice::runtime::store::stale::clean_folder(folder));
            }
            for d in &done {
                eprintln!("{d}");
            }
            eprintln!(
                "cleaned {} leftover(s) of runs that no longer run (spill base {})",
                done.len(),
                base.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Generate {
            dataset: _,
            rows,
            seed,
            out,
        } => {
            if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            let tmp = out.with_extension("csv.partial");
            let file = std::fs::File::create(&tmp)
                .with_context(|| format!("creating {}", tmp.display()))?;
            let mut w = std::io::BufWriter::with_capacity(1 << 20, file);
            sluice::generate::w1(rows, seed, &mut w)
                .with_context(|| format!("writing {}", tmp.display()))?;
            w.flush()?;
            std::fs::rename(&tmp, &out)
                .with_context(|| format!("renaming into {}", out.display()))?;
            eprintln!("wrote {rows} rows to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn crossbeam_channel_unbounded() -> (
    crossbeam_channel::Sender<Event>,
    crossbeam_channel::Receiver<Event>,
) {
    crossbeam_channel::unbounded()
}

fn parse_vars(vars: &[String]) -> Option<VarSources> {
    let mut map = BTreeMap::new();
    for v in vars {
        match v.split_once('=') {
            Some((k, val)) if !k.is_empty() => {
                map.insert(k.to_string(), val.to_string());
            }
            _ => {
                eprintln!("error: --var {v}: expected NAME=VALUE");
                return None;
            }
        }
    }
    Some(VarSources::new(map).with_env())
}

fn invalid(e: &ValidationError) -> ExitCode {
    for d in &e.diagnostics {
        eprintln!("{d}");
    }
    let errors = e
        .diagnostics
        .iter()
        .filter(|d| d.severity == sluice::runtime::Severity::Error)
        .count();
    eprintln!("workflow is invalid: {errors} error(s)");
    ExitCode::from(1)
}

/// Shows progress until the run ends: a redrawn table on a terminal, log lines otherwise.
/// Gives back the sinks' "wrote ..." lines, to be shown once the outputs are committed.
/// A failing node is not reported here: the run's error names it, once.
fn watch(
    handle: &executor::RunHandle,
    rx: &crossbeam_channel::Receiver<Event>,
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
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
        }
        if interactive {
            clear(&mut drawn);
            let mut s = format!("elapsed {:.1}s\n", handle.elapsed().as_secs_f64());
            for p in handle.progress() {
                let state = match p.state.load(std::sync::atomic::Ordering::Relaxed) {
                    0 => "running",
                    1 => "done",
                    _ => "failed",
                };
                s.push_str(&format!(
                    "  {:<24} {:>12} in {:>12} out  {state}\n",
                    p.id,
                    p.features_in.load(std::sync::atomic::Ordering::Relaxed),
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

fn finish(
    result: Result<RunReport, RunError>,
    report_path: Option<&Path>,
    quiet: bool,
    strict: bool,
) -> anyhow::Result<ExitCode> {
    match result {
        Ok(report) => {
            if let Some(p) = report_path
                && let Err(e) = std::fs::write(p, serde_json::to_string_pretty(&report)?)
            {
                eprintln!(
                    "error: writing the report to {}: {e}; the run succeeded and its \
                     outputs were written",
                    p.display()
                );
                return Ok(ExitCode::from(2));
            }
            if !quiet {
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
            // Rejected features with nowhere to go: a warning, or a failure with --strict.
            let unhandled = report.unhandled_rejections();
            for u in &unhandled {
                eprintln!("warning: {u}");
            }
            if strict && !unhandled.is_empty() {
                eprintln!(
                    "error: --strict: features were rejected with no edge on \"rejected\" \
                     (connect it to a sink to keep them)"
                );
                return Ok(ExitCode::from(3));
            }
            Ok(ExitCode::SUCCESS)
        }
        Err(RunError::Cancelled) => {
            eprintln!("run cancelled; no output was written");
            Ok(ExitCode::from(130))
        }
        Err(RunError::Invalid(e)) => Ok(invalid(&e)),
        Err(e) => {
            eprintln!("error: {e}");
            // A failed commit says itself what was and was not written.
            if commit_error(&e).is_none() {
                eprintln!("run failed; no output was written");
            } else {
                eprintln!("run failed");
            }
            Ok(ExitCode::from(2))
        }
    }
}

/// The failed commit behind a run error, if that is what failed.
fn commit_error(e: &RunError) -> Option<&CommitError> {
    match e {
        RunError::ActionFailed {
            source: ActionError::Other(inner),
            ..
        } => inner.downcast_ref::<CommitError>(),
        _ => None,
    }
}

/// Whether `p` can be written, checked before the run (an existing file is not changed; a
/// missing one is created and removed again).
fn check_writable(p: &Path) -> Result<(), String> {
    if p.is_dir() {
        return Err("is a folder".to_string());
    }
    let existed = p.exists();
    let plain = |e: std::io::Error| {
        let t = e.to_string();
        match t.find(" (os error") {
            Some(i) => t[..i].to_lowercase(),
            None => t,
        }
    };
    std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .open(p)
        .map_err(plain)?;
    if !existed {
        std::fs::remove_file(p).map_err(plain)?;
    }
    Ok(())
}

/// The signals that cancel a run, and the exit code of the one that did.
mod signals {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU8, Ordering};

    use sluice::runtime::executor::CancelToken;

    /// What was caught: 0 nothing (yet), else the exit code (128 + the signal number).
    #[derive(Clone)]
    pub struct Caught(Arc<AtomicU8>);

    impl Caught {
        /// The exit code of a cancelled run: 130 (SIGINT), 143 (SIGTERM), 129 (SIGHUP).
        pub fn exit_code(&self) -> u8 {
            match self.0.load(Ordering::SeqCst) {
                0 => 130,
                c => c,
            }
        }
    }

    /// Blocks SIGINT, SIGTERM and SIGHUP in this thread (so in every thread started after
    /// it) and takes them on a thread of their own: the first cancels the run, a second one
    /// ends the process at once (what it leaves is cleaned by the next run or `sluice clean`).
    #[cfg(unix)]
    pub fn catch(cancel: CancelToken) -> anyhow::Result<Caught> {
        use nix::sys::signal::{SigSet, Signal};
        let mut set = SigSet::empty();
        for s in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
            set.add(s);
        }
        set.thread_block()?;
        let caught = Caught(Arc::new(AtomicU8::new(0)));
        let c = caught.clone();
        std::thread::Builder::new()
            .name("sluice-signals".into())
            .spawn(move || {
                while let Ok(sig) = set.wait() {
                    let code = 128 + sig as u8;
                    if c.0.swap(code, Ordering::SeqCst) != 0 {
                        std::process::exit(i32::from(code));
                    }
                    cancel.cancel();
                }
            })?;
        Ok(caught)
    }

    /// Ctrl-C (and, with the crate's `termination` feature, termination) cancels the run.
    #[cfg(not(unix))]
    pub fn catch(cancel: CancelToken) -> anyhow::Result<Caught> {
        let caught = Caught(Arc::new(AtomicU8::new(0)));
        ctrlc::set_handler(move || cancel.cancel())?;
        Ok(caught)
    }
}
