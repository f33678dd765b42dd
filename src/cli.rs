//! The command line: subcommands and options, with typed values parsed by clap.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use sluice::runtime::memory::{GatePolicy, parse_size};

#[derive(Parser)]
#[command(
    name = "sluice",
    version,
    about = "Run dataflow workflows over features (YAML in, files out)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
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
        #[arg(long, value_name = "SIZE", value_parser = memory_limit)]
        memory_limit: Option<u64>,
        /// Threads in the shared pool (default: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Features per batch on edges.
        #[arg(long, default_value_t = 1024)]
        batch_size: usize,
        /// Heavy-finish admission: adaptive, semaphore:N or ungated.
        #[arg(long, default_value = "adaptive", value_parser = gate_policy)]
        gate: GatePolicy,
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
        /// Capture what flows on edges into the job folder: `all`, or edge names separated
        /// by commas as `sluice graph --edges` prints them, quoted for the shell
        /// (`'read->keep,keep.passed->order'`).
        #[arg(long, value_name = "EDGES")]
        capture: Option<String>,
        /// The job folder captures go to (default: a new folder under .sluice/jobs/), or,
        /// with --from, the job to re-run from.
        #[arg(long, value_name = "DIR")]
        job_dir: Option<String>,
        /// Run only this node and what lies downstream of it, fed from the edges captured
        /// in --job-dir.
        #[arg(
            long,
            value_name = "NODE",
            requires = "job_dir",
            conflicts_with = "capture"
        )]
        from: Option<String>,
        /// Resume an interrupted run (Ctrl-C, a kill, a crash): readers of APIs
        /// (`http_reader`, `stac_reader`) take the pages they had completed from the
        /// journals in --job-dir instead of fetching them again. Without it, a run with
        /// --job-dir starts its journals over. A resumed run captures nothing.
        #[arg(
            long,
            requires = "job_dir",
            conflicts_with_all = ["capture", "from", "ui"]
        )]
        resume: bool,
        /// Serve a live view of the run (a page with the graph, its counts and a Cancel
        /// button) while it goes on; the URL is the first line printed.
        #[arg(long, conflicts_with = "from")]
        ui: bool,
        /// The live view's port (0: a free one).
        #[arg(long, default_value_t = 0, requires = "ui")]
        port: u16,
        /// The live view's address (default loopback; another address lets other machines
        /// watch and, with the page's token, cancel).
        #[arg(long, default_value = "127.0.0.1", requires = "ui")]
        bind: std::net::IpAddr,
        /// Run one stage of a partitioned run (see `sluice plan`): with --partition (or
        /// --partitions and the index from the environment) and --job.
        #[arg(
            long,
            value_name = "K",
            requires = "job",
            conflicts_with_all = ["capture", "from", "resume", "ui", "job_dir"]
        )]
        stage: Option<usize>,
        /// The task of the stage to run: INDEX/COUNT, counting from 0 (`--partition 1/4`).
        #[arg(
            long,
            value_name = "I/N",
            requires = "stage",
            conflicts_with = "partitions"
        )]
        partition: Option<sluice::runtime::Slice>,
        /// The count of partitions, the task's index taken from JOB_COMPLETION_INDEX
        /// (Kubernetes Indexed Jobs), BATCH_TASK_INDEX (Google Cloud Batch) or
        /// AWS_BATCH_JOB_ARRAY_INDEX (AWS Batch array jobs).
        #[arg(long, value_name = "N", requires = "stage")]
        partitions: Option<u64>,
        /// The job folder of a partitioned run (a folder or a store location such as
        /// s3://bucket/prefix): where stages hand their outputs to the next.
        #[arg(long, value_name = "URL", requires = "stage")]
        job: Option<String>,
    },
    /// Show how a workflow runs in partitions: its stages (cut at sorts, joins, aggregates
    /// and writers of one file), the tasks of each, what each reads and writes.
    Plan {
        /// The workflow file.
        file: PathBuf,
        /// How many tasks a partitioned stage runs.
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
        partitions: u32,
        /// Set a variable: --var name=value (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Print the plan as JSON, for drivers.
        #[arg(long)]
        json: bool,
    },
    /// Serve a live view of a workflow: the page runs it at once, and again at a click.
    /// The URL is the first line printed; Ctrl-C cancels the run and stops the server.
    Serve {
        /// The workflow file (read again for every run).
        file: PathBuf,
        /// Set a variable: --var name=value (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// The port (0: a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// The address (default loopback).
        #[arg(long, default_value = "127.0.0.1")]
        bind: std::net::IpAddr,
        /// Write each run's report (counts, timings, memory) as JSON.
        #[arg(long, value_name = "FILE")]
        report: Option<PathBuf>,
        /// Memory limit for each run, e.g. 64MB or 2GiB.
        #[arg(long, value_name = "SIZE", value_parser = memory_limit)]
        memory_limit: Option<u64>,
        /// Threads in the shared pool (default: one per core).
        #[arg(long, default_value_t = 0)]
        threads: usize,
        /// Folder for spill files.
        #[arg(long, value_name = "DIR")]
        spill_dir: Option<PathBuf>,
        /// Capture edges (`all`, or names): the page previews captured edges.
        #[arg(long, value_name = "EDGES")]
        capture: Option<String>,
        /// The first run's job folder (later runs: DIR-run2, ...).
        #[arg(long, value_name = "DIR")]
        job_dir: Option<String>,
        /// Do not start a run until the page asks for one.
        #[arg(long)]
        no_start: bool,
    },
    /// Draw a run report (`run --report FILE`) as a self-contained HTML page: a timeline per
    /// node, memory over time against the limit, features per edge.
    Report {
        /// The run report (JSON).
        file: PathBuf,
        /// The page to write.
        #[arg(long, value_name = "OUT.html")]
        html: PathBuf,
    },
    /// Show what a capture job holds: its edges, or the features of one edge.
    Inspect {
        /// The job folder.
        job: String,
        /// The edge to print (omit it to list the edges).
        edge: Option<String>,
        /// Features to skip.
        #[arg(long, default_value_t = 0)]
        offset: u64,
        /// Most features to print.
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// table, jsonl or csv.
        #[arg(long, default_value = "table")]
        format: sluice::inspect::Format,
    },
    /// Check a workflow and print every problem found.
    Validate {
        /// The workflow file.
        file: PathBuf,
        /// Set a variable: --var name=value (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// text (one line per problem, on stderr) or json (one object on stdout, with
        /// file, line, column, node and parameter of every problem, for editors).
        #[arg(long, value_enum, default_value_t = DiagnosticFormat::Text)]
        format: DiagnosticFormat,
    },
    /// Print a workflow as a Graphviz DOT graph.
    Graph {
        /// The workflow file.
        file: PathBuf,
        /// Print the edge names (as --capture takes them), one per line, instead.
        #[arg(long)]
        edges: bool,
        /// Set a variable: --var name=value (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
    },
    /// List the actions, one line each; `sluice actions NAME` shows one action's
    /// parameters (types, defaults, descriptions) and an example.
    Actions {
        /// The action to describe.
        name: Option<String>,
        /// Print JSON with each action's parameter schema (for editors and UIs).
        #[arg(long)]
        json: bool,
    },
    /// List the expression functions (signature, what each gives, an example), or show one.
    Functions {
        /// The function to show (omit it to list them all).
        name: Option<String>,
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

/// A memory limit: a size above 0 (`64MB`, `2GiB`, `1000000`).
fn memory_limit(s: &str) -> Result<u64, String> {
    match parse_size(s)? {
        0 => Err("the limit must be above 0 (e.g. 64MB)".to_string()),
        bytes => Ok(bytes),
    }
}

/// A heavy-finish gate policy: `adaptive`, `semaphore:N` or `ungated`.
fn gate_policy(s: &str) -> Result<GatePolicy, String> {
    s.parse()
}

/// How `validate` prints what it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DiagnosticFormat {
    /// `file:line:column: node "x", parameter "p": message` lines on stderr.
    Text,
    /// One JSON object on stdout (see `workflow::Validation`).
    Json,
}
