//! The `sluice` command: a thin shell over the runtime (argument parsing, progress, exit
//! codes). Exit codes: 0 ok, 1 invalid workflow or usage, 2 run failed, 130 interrupted
//! (SIGINT), 143 terminated (SIGTERM), 129 hung up (SIGHUP). Output to a closed pipe
//! (`sluice actions | head`) ends quietly with 0.

mod allocator;
mod capture;
mod cli;
mod partitioned;
mod progress;
mod serve;
mod signals;

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;
use sluice::runtime::executor::{self, CancelToken, RunOptions, RunReport};
use sluice::runtime::store::CommitError;
use sluice::runtime::workflow::{self, VarSources};
use sluice::runtime::{ActionError, RunError, ValidationError, events::EventSender};

use cli::{Cli, Command, DiagnosticFormat};

fn main() -> ExitCode {
    allocator::tune_allocator();
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

/// `sluice functions [NAME]`: the expression functions from the evaluator's own catalog.
fn functions(name: Option<&str>) -> anyhow::Result<ExitCode> {
    use sluice::runtime::expr;
    let Some(name) = name else {
        let mut text = String::new();
        for f in expr::functions() {
            text.push_str(&format!(
                "{}\n    {}\n    example: {}\n",
                f.signature, f.description, f.example
            ));
        }
        out(&text)?;
        return Ok(ExitCode::SUCCESS);
    };
    match expr::function(name) {
        Some(f) => {
            out(&format!(
                "{}\n    {}\nexample: {}\n",
                f.signature, f.description, f.example
            ))?;
            Ok(ExitCode::SUCCESS)
        }
        None => {
            let near = expr::nearest_functions(name);
            let hint = match near.as_slice() {
                [] => String::new(),
                [one] => format!("; did you mean \"{one}\"?"),
                many => format!("; did you mean one of \"{}\"?", many.join("\", \"")),
            };
            eprintln!("error: unknown function \"{name}\"{hint} (`sluice functions` lists them)");
            Ok(ExitCode::from(1))
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
            capture,
            job_dir,
            from,
            resume,
            ui,
            port,
            bind,
            stage,
            partition,
            partitions,
            job,
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
            if ui {
                let settings = serve::RunSettings {
                    file,
                    vars,
                    batch_size,
                    threads,
                    memory_limit,
                    gate,
                    spill_dir,
                    capture,
                    job_dir,
                    // Written by the command line, as without --ui.
                    report: None,
                };
                return live_run(
                    settings,
                    (bind, port),
                    cancel,
                    signal,
                    report,
                    quiet,
                    strict,
                );
            }
            let plan = match workflow::load_file(&file, &registry, &vars) {
                Ok(p) => p,
                Err(e) => return Ok(invalid(&e)),
            };
            let (plan, slice) = match stage {
                None => (plan, sluice::runtime::Slice::WHOLE),
                Some(stage) => {
                    let job = job.unwrap_or_default();
                    match partitioned::task(plan, stage, partition, partitions, &job) {
                        Ok(t) => (t.plan, t.slice),
                        Err(code) => return Ok(code),
                    }
                }
            };
            // An unconnected `rejected` port is said by `validate`; a run says, at its end,
            // whether features were actually rejected there.
            for w in plan.warnings.iter().filter(|w| {
                w.code != Some(workflow::UNCONNECTED_REJECTED)
                    && w.code != Some(workflow::UNKNOWN_SCHEMA)
            }) {
                eprintln!("{w}");
            }
            // Journals (what API readers completed) live in the job folder, beside a
            // capture; a resumed run replays them and captures nothing (the folder holds
            // the first run's capture already).
            let journal = match capture::journal(job_dir.as_deref(), resume) {
                Ok(j) => j,
                Err(message) => {
                    eprintln!("error: {message}");
                    return Ok(ExitCode::from(1));
                }
            };
            let prepared = if resume {
                Ok(capture::Capture {
                    options: None,
                    plan,
                })
            } else {
                capture::prepare(
                    plan,
                    capture.as_deref(),
                    job_dir.as_deref(),
                    from.as_deref(),
                )
            };
            let capture::Capture {
                options: capture,
                plan,
            } = match prepared {
                Ok(c) => c,
                Err(message) => {
                    eprintln!("error: {message}");
                    return Ok(ExitCode::from(1));
                }
            };
            let (events, stream) = EventSender::stream();
            let options = RunOptions {
                batch_size,
                threads,
                memory_limit,
                gate,
                spill_dir,
                events,
                cancel,
                capture: capture.clone(),
                journal,
                slice,
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
                // The job folder could not be started (it holds a job already, ...).
                Err(RunError::Job(e)) => {
                    eprintln!("error: --job-dir: {e}");
                    return Ok(ExitCode::from(1));
                }
                Err(e) => return Err(e.into()),
            };
            let interactive = !quiet && std::io::stderr().is_terminal();
            let wrote = progress::watch(stream, interactive, quiet);
            let result = handle.wait();
            // Where the capture went, and how far it got: after the run's own lines.
            let tell_capture = || {
                if let Some(c) = &capture
                    && !quiet
                {
                    capture::report(c);
                }
            };
            let result = match result {
                Err(RunError::Cancelled) => {
                    eprintln!("run cancelled; no output was written");
                    tell_capture();
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
            let code = finish(result, report.as_deref(), quiet, strict);
            tell_capture();
            code
        }
        Command::Serve {
            file,
            vars,
            port,
            bind,
            report,
            memory_limit,
            threads,
            spill_dir,
            capture,
            job_dir,
            no_start,
        } => {
            let stop = CancelToken::new();
            signals::catch(stop.clone())?;
            let Some(vars) = parse_vars(&vars) else {
                return Ok(ExitCode::from(1));
            };
            let settings = serve::RunSettings {
                file,
                vars,
                batch_size: 1024,
                threads,
                memory_limit,
                gate: Default::default(),
                spill_dir,
                capture,
                job_dir,
                report,
            };
            serve_until_stopped(settings, (bind, port), stop, no_start)
        }
        Command::Report { file, html } => {
            let read = std::fs::read_to_string(&file)
                .map_err(|e| e.to_string())
                .and_then(|t| {
                    serde_json::from_str::<serde_json::Value>(&t).map_err(|e| e.to_string())
                });
            let page = read.and_then(|v| sluice::report::html(&v).map_err(|e| e.to_string()));
            let page = match page {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("error: {}: {e}", file.display());
                    return Ok(ExitCode::from(1));
                }
            };
            // Whole or not at all: a temporary sibling renamed into place.
            let tmp = html.with_file_name(format!(
                ".{}.{}.tmp",
                html.file_name()
                    .map_or("report".into(), |n| n.to_string_lossy()),
                std::process::id()
            ));
            let written = std::fs::write(&tmp, page).and_then(|()| std::fs::rename(&tmp, &html));
            if let Err(e) = written {
                let _ = std::fs::remove_file(&tmp);
                eprintln!("error: --html {}: {e}", html.display());
                return Ok(ExitCode::from(1));
            }
            eprintln!("wrote {}", html.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { file, vars, format } => {
            let Some(vars) = parse_vars(&vars) else {
                return Ok(ExitCode::from(1));
            };
            let loaded = workflow::load_file(&file, &registry, &vars);
            if format == DiagnosticFormat::Json {
                let v = workflow::Validation::of(&file.display().to_string(), &loaded);
                out(&(serde_json::to_string_pretty(&v)? + "\n"))?;
                return Ok(if v.valid {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::from(1)
                });
            }
            match loaded {
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
        Command::Plan {
            file,
            partitions,
            vars,
            json,
        } => {
            let Some(vars) = parse_vars(&vars) else {
                return Ok(ExitCode::from(1));
            };
            let plan = match workflow::load_file(&file, &registry, &vars) {
                Ok(p) => p,
                Err(e) => return Ok(invalid(&e)),
            };
            let stages = sluice::runtime::stage::plan_stages(&plan, partitions);
            if json {
                let text = serde_json::to_string_pretty(&stages.to_json(&plan))?;
                out(&format!("{text}\n"))?;
            } else {
                out(&stages.describe(&plan))?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Graph { file, vars, edges } => {
            let Some(vars) = parse_vars(&vars) else {
                return Ok(ExitCode::from(1));
            };
            match workflow::load_file(&file, &registry, &vars) {
                Ok(plan) if edges => {
                    let names: Vec<String> = (0..plan.edges.len())
                        .map(|i| plan.edge_name(i) + "\n")
                        .collect();
                    out(&names.concat())?;
                    Ok(ExitCode::SUCCESS)
                }
                Ok(plan) => {
                    out(&plan.to_dot())?;
                    Ok(ExitCode::SUCCESS)
                }
                Err(e) => Ok(invalid(&e)),
            }
        }
        Command::Inspect {
            job,
            edge,
            offset,
            limit,
            format,
        } => match capture::inspect(&job, edge.as_deref(), offset, limit, format) {
            Ok((text, code)) => {
                out(&text)?;
                Ok(code)
            }
            Err(message) => {
                eprintln!("error: {message}");
                Ok(ExitCode::from(1))
            }
        },
        Command::Actions { name, json } => {
            let specs: Vec<_> = match &name {
                None => registry.specs().collect(),
                Some(n) => match registry.get(n) {
                    Some(spec) => vec![spec],
                    None => {
                        let hint = sluice::runtime::error::did_you_mean(&registry.suggest(n))
                            .unwrap_or_else(|| "`sluice actions` lists them".to_string());
                        eprintln!("error: unknown action \"{n}\"; {hint}");
                        return Ok(ExitCode::from(1));
                    }
                },
            };
            if json {
                let list: Vec<_> = specs.iter().map(|s| s.to_json()).collect();
                let value = match name {
                    Some(_) => list.into_iter().next().unwrap_or_default(),
                    None => serde_json::Value::Array(list),
                };
                out(&format!("{}\n", serde_json::to_string_pretty(&value)?))?;
            } else if name.is_some() {
                out(&sluice::help::action(specs[0]))?;
            } else {
                out(&sluice::help::list(specs))?;
                eprintln!("`sluice actions NAME` shows an action's parameters and an example");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Functions { name } => functions(name.as_deref()),
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
            sluice::generate::w1_file(&out, rows, seed)?;
            eprintln!("wrote {rows} rows to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The session and its server on `bind:port`, the URL printed on the first line of standard
/// output; `None` (the reason said, naming `what` asked for it) when the server cannot start.
fn start_live_view(
    settings: serve::RunSettings,
    ends_with_run: bool,
    (bind, port): (std::net::IpAddr, u16),
    what: &str,
) -> anyhow::Result<Option<(std::sync::Arc<serve::Session>, serve::Server)>> {
    let session = serve::Session::new(settings, sluice::actions::registry(), ends_with_run);
    match serve::Server::start(session.clone(), bind, port) {
        Ok(server) => {
            out(&format!("{}\n", server.url()))?;
            Ok(Some((session, server)))
        }
        Err(e) => {
            eprintln!("error: {what}: {e}");
            Ok(None)
        }
    }
}

/// `sluice run --ui`: the run, watched from a page; the process ends with the run, with the
/// exit code it would have without the page.
fn live_run(
    settings: serve::RunSettings,
    (bind, port): (std::net::IpAddr, u16),
    cancel: CancelToken,
    signal: signals::Caught,
    report: Option<std::path::PathBuf>,
    quiet: bool,
    strict: bool,
) -> anyhow::Result<ExitCode> {
    let Some((session, server)) = start_live_view(settings, true, (bind, port), "--ui")? else {
        return Ok(ExitCode::from(1));
    };
    let (run, handle) = match session.start(cancel) {
        Ok(started) => started,
        Err(serve::StartError::Invalid(e)) => {
            server.linger(std::time::Duration::from_secs(1));
            return Ok(invalid(&e));
        }
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(ExitCode::from(1));
        }
    };
    let result = handle.wait();
    session.finished(run, &result);
    // The pages get the end of the run before the server goes.
    server.linger(std::time::Duration::from_secs(2));
    match result {
        Err(RunError::Cancelled) => {
            eprintln!("run cancelled; no output was written");
            Ok(ExitCode::from(signal.exit_code()))
        }
        other => finish(other, report.as_deref(), quiet, strict),
    }
}

/// `sluice serve`: the page, and runs at its asking, until a signal; the run going on then is
/// cancelled (leaving nothing behind) before the process ends.
fn serve_until_stopped(
    settings: serve::RunSettings,
    (bind, port): (std::net::IpAddr, u16),
    stop: CancelToken,
    no_start: bool,
) -> anyhow::Result<ExitCode> {
    let Some((session, server)) = start_live_view(settings, false, (bind, port), "serve")? else {
        return Ok(ExitCode::from(1));
    };
    eprintln!("serving the live view at {}; Ctrl-C stops", server.url());
    if no_start {
        session.show();
    } else {
        match session.spawn_run() {
            Ok(_) => {}
            // Shown on the page, and here.
            Err(serve::StartError::Invalid(e)) => {
                for d in &e.diagnostics {
                    eprintln!("{d}");
                }
            }
            Err(e) => eprintln!("error: {e}"),
        }
    }
    let _ = stop.receiver().recv();
    session.cancel();
    session.wait_idle();
    drop(server);
    eprintln!("stopped");
    Ok(ExitCode::SUCCESS)
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
    let unreadable = e
        .diagnostics
        .iter()
        .any(|d| d.code == Some(workflow::UNREADABLE));
    if !unreadable {
        eprintln!("workflow is invalid: {errors} error(s)");
    }
    ExitCode::from(1)
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
                progress::summary(&report);
            }
            // A limit the user set is never passed silently.
            if let Some(o) = report.memory_overshoot() {
                eprintln!("warning: {o}");
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
