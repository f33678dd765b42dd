#!/usr/bin/env python3
"""Run a sluice workflow as partitioned stages of tasks on Ray.

    python3 scale/ray_driver.py WF.yaml --partitions N --job DIR_OR_URL [--var k=v]...
        [--address ADDR] [--retries K] [--cpus-per-task C] [--sluice PATH]
        [--memory-limit SIZE] [--report FILE] [--timeout SECONDS] [--env NAME[=VALUE]]...
        [--quiet]

The driver asks the binary for the plan (`sluice plan WF --partitions N --json`), then runs
every task of every stage as a Ray task that calls `sluice run WF --stage K --partition I/N
--job URL` in a subprocess on whichever node Ray picks. A stage starts once the stages it
depends on have finished; a failed task is run again up to --retries times (a task that exits
with 1, bad arguments or an invalid workflow, is not: it would fail the same way). What the
tasks print is forwarded as it comes, each line prefixed with `[stage K task I]`. At the end
the per-task run reports are merged into one (per node: the feature counts summed over the
tasks; per stage: the wall time and the attempts), printed as a table and written to
DIR/report.json for a local job folder, or to --report.

Without --address, `ray.init()` starts a local Ray instance on this machine; with it, the
driver joins that cluster. The workflow file, the binary and every relative path must then
be the same on every node (a shared file system or one image), and the job folder a location
that every node reaches (`s3://bucket/prefix`, or a shared mount).

Exit codes: 0 every stage succeeded; 1 bad arguments, or `sluice plan` refused the workflow;
2 a task failed after its retries, or --timeout passed; 130 interrupted (Ctrl-C).

Fault injection for tests: with SLUICE_RAY_KILL_ONCE="STAGE:TASK:DELAY_MS" in the driver's
environment, the first attempt of that task has its sluice process sent SIGKILL DELAY_MS
milliseconds after it started (`STAGE:TASK:line`: as soon as it printed its first line); the
driver then runs the task again like any other failed task.

Needs the `ray` package (scale/requirements.txt); the standard library otherwise.
"""

from __future__ import annotations

import argparse
import collections
import importlib
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

EXIT_OK = 0
EXIT_USAGE = 1
EXIT_FAILED = 2
EXIT_INTERRUPTED = 130

KILL_ONCE_ENV = "SLUICE_RAY_KILL_ONCE"
# Lines of a task's output kept to explain its failure.
TAIL_LINES = 30
# How long the driver waits for cancelled tasks to stop before it gives up on them.
CANCEL_GRACE_S = 30.0
# How long a task's sluice process has to stop after SIGTERM before it gets SIGKILL.
TERM_GRACE_S = 10.0
PLAN_TIMEOUT_S = 300.0


class UsageError(Exception):
    """Bad arguments or an unusable plan: the driver exits with 1."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # argparse would exit with 2; bad arguments are 1 here.
        raise UsageError(message)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected 0 or more, got {value}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0 or math.isinf(value):
        raise argparse.ArgumentTypeError(f"expected a positive number, got {text}")
    return value


_SIZE_UNITS = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20,
               "mb": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30,
               "t": 1 << 40, "tb": 1 << 40, "tib": 1 << 40}


def parse_size(text: str) -> int:
    """A size as `sluice run --memory-limit` reads it (64MB, 1.5GiB, 512k, 1000000; units
    are powers of 1024), in bytes."""
    t = text.strip()
    split = next((i for i, c in enumerate(t) if not (c.isdigit() or c == ".")), len(t))
    number, unit = t[:split], t[split:].strip().lower()
    try:
        value = float(number)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid size {text!r} (examples: 64MB, 2GiB, 1000000)") from None
    if unit not in _SIZE_UNITS:
        raise argparse.ArgumentTypeError(f"unknown size unit {unit!r} in {text!r} (use B, KB, MB, GB, TB)")
    size = int(value * _SIZE_UNITS[unit])
    if size <= 0:
        raise argparse.ArgumentTypeError(f"a memory limit must be above 0, got {text!r}")
    return size


def _memory_limit(text: str) -> str:
    parse_size(text)
    return text.strip()


def _variable(text: str) -> str:
    if "=" not in text or text.startswith("="):
        raise argparse.ArgumentTypeError(f"expected NAME=VALUE, got {text!r}")
    return text


def build_parser() -> argparse.ArgumentParser:
    """The command line of the driver."""
    p = _Parser(
        prog="ray_driver.py",
        description="Run a sluice workflow as partitioned stages of tasks on Ray.",
    )
    p.add_argument("workflow", help="the workflow file (YAML)")
    p.add_argument("--partitions", type=_positive_int, required=True, metavar="N",
                   help="how many partitions (tasks) a partitioned stage has")
    p.add_argument("--job", required=True, metavar="DIR_OR_URL",
                   help="the job folder the stages exchange data through: a folder every "
                        "node reaches, or s3://bucket/prefix")
    p.add_argument("--var", type=_variable, action="append", default=[], metavar="K=V",
                   help="a workflow variable, as for `sluice run` (repeatable)")
    p.add_argument("--address", metavar="ADDR",
                   help="join this Ray cluster (e.g. auto, or ray://host:10001); "
                        "without it a local Ray instance is started")
    p.add_argument("--retries", type=_non_negative_int, default=2, metavar="K",
                   help="run a failed task again up to K times (default 2)")
    p.add_argument("--cpus-per-task", type=_positive_int, default=1, metavar="C",
                   help="CPUs Ray reserves for each task, also its --threads (default 1); a stage "
                        "that runs as one task gets those of all partitions, up to the cluster's")
    p.add_argument("--memory-limit", type=_memory_limit, metavar="SIZE",
                   help="every task's `sluice run --memory-limit` (e.g. 2GB); Ray also "
                        "reserves that much memory for each task when it places them")
    p.add_argument("--sluice", metavar="PATH",
                   help="the sluice binary (default: $SLUICE_BIN, else target/release/sluice "
                        "of this repository, else `sluice` on PATH)")
    p.add_argument("--report", metavar="FILE",
                   help="write the merged run report here (default: DIR/report.json for "
                        "a local job folder; none for a remote one)")
    p.add_argument("--timeout", type=_positive_float, metavar="SECONDS",
                   help="fail the job when it has not finished after this long")
    p.add_argument("--env", action="append", default=[], metavar="NAME[=VALUE]",
                   help="set this environment variable for every task (NAME alone: its "
                        "value here); repeatable")
    p.add_argument("--quiet", action="store_true",
                   help="pass --quiet to the tasks (no progress display; warnings and "
                        "errors still come)")
    return p


def default_sluice() -> str | None:
    """$SLUICE_BIN, else target/release/sluice of the repository this file is in, else
    `sluice` on PATH; None when there is none."""
    from_env = os.environ.get("SLUICE_BIN")
    if from_env:
        return from_env
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    release = os.path.join(repo, "target", "release", "sluice")
    if os.access(release, os.X_OK):
        return release
    return shutil.which("sluice")


def parse_kill_once(text: str | None) -> tuple[int, int, str] | None:
    """SLUICE_RAY_KILL_ONCE="STAGE:TASK:DELAY_MS" (or "STAGE:TASK:line") as
    (stage, task, when); None when unset."""
    if not text:
        return None
    parts = text.split(":")
    if len(parts) != 3:
        raise UsageError(f"{KILL_ONCE_ENV}={text!r}: expected STAGE:TASK:DELAY_MS or STAGE:TASK:line")
    stage, task, when = parts
    try:
        stage_id, task_id = int(stage), int(task)
        if when != "line" and int(when) < 0:
            raise ValueError
    except ValueError:
        raise UsageError(
            f"{KILL_ONCE_ENV}={text!r}: STAGE and TASK must be whole numbers and DELAY_MS "
            "a number of milliseconds (0 or more) or `line`"
        ) from None
    return stage_id, task_id, when


def is_remote(location: str) -> bool:
    """Whether a job location is an object store URL rather than a local folder."""
    scheme, sep, _ = location.partition("://")
    return bool(sep) and scheme != "file"


def local_path(location: str) -> str:
    """A local job location as an absolute path (file:// URLs included)."""
    if location.startswith("file://"):
        location = location[len("file://"):]
    return os.path.abspath(location)


# ---------------------------------------------------------------------------------------------
# The plan


def read_plan(sluice: str, workflow: str, partitions: int, variables: list[str]) -> dict:
    """Runs `sluice plan --json` and checks what it printed."""
    cmd = [sluice, "plan", workflow, "--partitions", str(partitions)]
    for v in variables:
        cmd += ["--var", v]
    cmd.append("--json")
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=PLAN_TIMEOUT_S,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise UsageError(f"the sluice binary {sluice!r} was not found (give it with --sluice "
                         "or SLUICE_BIN)") from None
    except PermissionError:
        raise UsageError(f"the sluice binary {sluice!r} cannot be run (not executable)") from None
    except subprocess.TimeoutExpired:
        raise UsageError(f"`sluice plan` did not answer within {PLAN_TIMEOUT_S:.0f} s") from None
    if done.returncode != 0:
        raise UsageError(
            f"`{' '.join(cmd)}` failed with exit code {done.returncode}:\n{done.stderr.rstrip()}"
        )
    try:
        plan = json.loads(done.stdout)
    except json.JSONDecodeError as e:
        raise UsageError(f"`sluice plan --json` printed no valid JSON ({e})") from None
    check_plan(plan, partitions)
    return plan


def check_plan(plan: dict, partitions: int) -> None:
    """Refuses a plan the driver cannot run: another version, other partitions, a stage whose
    task count is neither N nor 1, a dependency on a stage not listed before it."""
    if not isinstance(plan, dict) or plan.get("version") != 1:
        raise UsageError(f"plan version {plan.get('version') if isinstance(plan, dict) else None!r}"
                         " is not supported (this driver reads version 1)")
    if plan.get("partitions") != partitions:
        raise UsageError(f"the plan has {plan.get('partitions')!r} partitions, {partitions} were asked for")
    stages = plan.get("stages")
    if not isinstance(stages, list) or not stages:
        raise UsageError("the plan lists no stages")
    seen: set[int] = set()
    for s in stages:
        k = s.get("stage") if isinstance(s, dict) else None
        if not isinstance(k, int) or isinstance(k, bool) or k in seen:
            raise UsageError(f"plan stage {k!r}: missing or repeated stage number")
        if s.get("tasks") not in (1, partitions):
            raise UsageError(f"plan stage {k}: {s.get('tasks')!r} tasks (expected 1 or {partitions})")
        deps = s.get("depends_on", [])
        if not isinstance(deps, list):
            raise UsageError(f"plan stage {k}: depends_on is not a list")
        for d in deps:
            if d not in seen:
                raise UsageError(f"plan stage {k} depends on stage {d!r}, which is not listed before it")
        seen.add(k)


# ---------------------------------------------------------------------------------------------
# One task, on a Ray worker


def _parent_death_signal():
    """A preexec_fn that has Linux send the child SIGKILL when the worker that started it dies
    (Ray kills workers outright: a sluice process must not outlive its task). The libc lookup
    happens here, before the fork; the child only makes the one call."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def set_signal():
        prctl(pr_set_pdeathsig, int(signal.SIGKILL))

    return set_signal


def _stop(proc: subprocess.Popen) -> None:
    """Ends a child still running: SIGTERM (sluice cleans up and exits 143), then SIGKILL."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(TERM_GRACE_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def run_task(spec: dict, sink) -> dict:
    """Runs one attempt of one task: `sluice run ... --stage K --partition I/N` in a
    subprocess. Its output lines go to `sink` (a progress actor, or None) as they come; what
    comes back is the exit code, the last lines, the run report and the wall time. Runs on a
    Ray worker; a Ray cancel (KeyboardInterrupt here) stops the subprocess before it returns."""
    import ray

    stage, task = spec["stage"], spec["task"]
    fd, report_path = tempfile.mkstemp(prefix=f"sluice-s{stage}-t{task}-", suffix=".json")
    os.close(fd)
    os.remove(report_path)  # sluice writes it; an empty file would read as a broken report
    argv = [spec["sluice"], "run", *spec["args"], "--report", report_path]
    env = dict(os.environ)
    env.update(spec["env"])
    cwd = spec["cwd"] if spec["cwd"] and os.path.isdir(spec["cwd"]) else None
    tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
    killed = threading.Event()
    timer = None
    start = time.monotonic()
    proc = None

    def kill_now():
        # poll() reaps a finished child, so a process that already ended is never signalled.
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            killed.set()

    try:
        proc = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            cwd=cwd, env=env, preexec_fn=_parent_death_signal(),
        )
        kill_when = spec["kill"]
        if kill_when is not None and kill_when != "line":
            timer = threading.Timer(int(kill_when) / 1000.0, kill_now)
            timer.daemon = True
            timer.start()
        for raw in proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\r\n")
            tail.append(line)
            if sink is not None:
                sink.put.remote(stage, task, line)
            if kill_when == "line" and not killed.is_set():
                kill_now()
        proc.wait()
    except BaseException:
        if proc is not None:
            _stop(proc)
        raise
    finally:
        if timer is not None:
            timer.cancel()
    wall_ms = (time.monotonic() - start) * 1000.0
    rc = proc.returncode
    report, report_error = None, None
    try:
        with open(report_path, encoding="utf-8") as f:
            report = json.load(f)
    except FileNotFoundError:
        report_error = "no report was written"
    except (OSError, ValueError) as e:
        report_error = f"the report could not be read: {e}"
    finally:
        try:
            os.remove(report_path)
        except OSError:
            pass
    if sink is not None:
        # Calls from one caller run in order: once this returns, every line above is in.
        ray.get(sink.ping.remote())
    return {
        "exit_code": rc if rc >= 0 else 128 - rc,
        "signal": signal.Signals(-rc).name if rc < 0 else None,
        "killed_by_hook": killed.is_set() and rc == -signal.SIGKILL,
        "tail": list(tail),
        "report": report,
        "report_error": report_error,
        "wall_ms": wall_ms,
        "host": socket.gethostname(),
    }


class ProgressSink:
    """A Ray actor that collects the tasks' output lines for the driver to print."""

    def __init__(self):
        self._lines: list[tuple[int, int, str]] = []

    def put(self, stage: int, task: int, line: str) -> None:
        self._lines.append((stage, task, line))

    def drain(self) -> list[tuple[int, int, str]]:
        lines, self._lines = self._lines, []
        return lines

    def ping(self) -> bool:
        return True


# ---------------------------------------------------------------------------------------------
# Merging the task reports

# Per-node numbers that are a maximum over tasks rather than a sum.
MAX_KEYS = frozenset({"elapsed_ms", "peak_reservation", "peak_rss_bytes", "peak_reserved_bytes",
                      "memory_limit_bytes"})
# Per-task detail that does not add up across tasks.
SKIP_KEYS = frozenset({"timeline", "memory"})


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _as_counts(v):
    """[[port, count], ...] as {port: count}; anything else unchanged."""
    if isinstance(v, list) and all(
        isinstance(x, list) and len(x) == 2 and isinstance(x[0], str) and _is_number(x[1]) for x in v
    ):
        return {name: count for name, count in v}
    return v


def merge_value(key: str, a, b):
    """Combines one field of two task reports: numbers are summed (a maximum for MAX_KEYS),
    objects and port lists merged by key, equal values kept, differing ones listed."""
    a, b = _as_counts(a), _as_counts(b)
    if _is_number(a) and _is_number(b):
        return max(a, b) if key in MAX_KEYS else a + b
    if isinstance(a, bool) and isinstance(b, bool) and key == "ok":
        return a and b
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for k, v in b.items():
            out[k] = merge_value(k, out[k], v) if k in out else _as_counts(v)
        return out
    if a == b:
        return a
    values = a if isinstance(a, list) and key == "state" else [a]
    return values if b in values else values + [b]


def merge_nodes(stage: int, reports: list[dict]) -> list[dict]:
    """The nodes of one stage's task reports, one entry per node id, in the order they first
    appear, each field merged over the tasks (`tasks`: how many reports had the node)."""
    merged: dict[str, dict] = {}
    for report in reports:
        for node in report.get("nodes", []):
            if not isinstance(node, dict) or "id" not in node:
                continue
            fields = {k: _as_counts(v) for k, v in node.items() if k not in SKIP_KEYS}
            if node["id"] not in merged:
                merged[node["id"]] = {"id": node["id"], "stage": stage, "tasks": 1,
                                      **{k: v for k, v in fields.items() if k != "id"}}
                continue
            entry = merged[node["id"]]
            entry["tasks"] += 1
            for k, v in fields.items():
                if k == "id":
                    continue
                entry[k] = merge_value(k, entry[k], v) if k in entry else v
    return list(merged.values())


# ---------------------------------------------------------------------------------------------
# The driver


class _Stage:
    def __init__(self, spec: dict):
        self.spec = spec
        self.id: int = spec["stage"]
        self.tasks: int = spec["tasks"]
        self.deps: list[int] = list(spec.get("depends_on", []))
        self.state = "not run"
        self.attempts = [0] * self.tasks
        self.results: list[dict | None] = [None] * self.tasks
        self.failed_attempts: list[dict] = []
        self.start: float | None = None
        self.end: float | None = None

    def complete(self) -> bool:
        return all(r is not None for r in self.results)


def _err(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _outcome_text(o: dict) -> str:
    if o.get("error"):
        return o["error"]
    if o.get("killed_by_hook"):
        return f"killed by {KILL_ONCE_ENV} (SIGKILL)"
    if o.get("signal"):
        return f"ended by {o['signal']} (exit code {o['exit_code']})"
    return f"exit code {o['exit_code']}"


class Driver:
    """Runs one job: the plan's stages, in dependency order, as Ray tasks."""

    def __init__(self, args: argparse.Namespace, sluice: str, kill_once):
        self.args = args
        self.sluice = os.path.abspath(sluice) if os.sep in sluice else sluice
        self.kill_once = kill_once
        self.workflow = os.path.abspath(args.workflow)
        self.job = args.job if is_remote(args.job) else local_path(args.job)
        self.env = self._task_env(args.env)
        self.plan: dict = {}
        self.stages: list[_Stage] = []

    @staticmethod
    def _task_env(entries: list[str]) -> dict[str, str]:
        env = {}
        for entry in entries:
            name, sep, value = entry.partition("=")
            if not name:
                raise UsageError(f"--env {entry!r}: expected NAME or NAME=VALUE")
            if not sep:
                if name not in os.environ:
                    raise UsageError(f"--env {name}: {name} is not set here")
                value = os.environ[name]
            env[name] = value
        return env

    def _stage_cpus(self, stage: _Stage, cluster_cpus: float) -> int:
        """CPUs for one task of `stage`: --cpus-per-task, or, for a stage that runs as one
        task (the merge after a cut), the CPUs all partitions had, up to the cluster's."""
        a = self.args
        if stage.tasks == 1 and a.partitions > 1:
            return max(a.cpus_per_task, min(a.cpus_per_task * a.partitions, int(cluster_cpus)))
        return a.cpus_per_task

    def _task_args(self, stage: _Stage, task: int, threads: int) -> list[str]:
        a = self.args
        out = [self.workflow]
        for v in a.var:
            out += ["--var", v]
        out += ["--stage", str(stage.id), "--partition", f"{task}/{a.partitions}",
                "--job", self.job, "--threads", str(threads)]
        if a.memory_limit:
            out += ["--memory-limit", a.memory_limit]
        if a.quiet:
            out.append("--quiet")
        return out

    def run(self) -> int:
        a = self.args
        self.plan = read_plan(self.sluice, self.workflow, a.partitions, a.var)
        self.stages = [_Stage(s) for s in self.plan["stages"]]
        import ray

        if __name__ != "__main__":
            # Imported (by a test, say): the workers cannot import this module, so Ray ships
            # its functions by value, as it does for a script's.
            ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
        own_session = not ray.is_initialized()
        if own_session:
            ray.init(address=a.address)
        elif a.address:
            _err(f"note: Ray is already initialised in this process; --address {a.address} is not used")
        try:
            return self._run_with_ray(ray)
        finally:
            if own_session:
                ray.shutdown()

    def _run_with_ray(self, ray) -> int:
        a = self.args
        n_tasks = sum(s.tasks for s in self.stages)
        _err(f"{self.plan.get('workflow') or os.path.basename(self.workflow)}: "
             f"{len(self.stages)} stage(s), {n_tasks} task(s), {a.partitions} partition(s), "
             f"job {self.job}")
        sink = ray.remote(num_cpus=0)(ProgressSink).remote()
        options = {"num_cpus": a.cpus_per_task, "max_retries": 0}
        if a.memory_limit:
            options["memory"] = parse_size(a.memory_limit)
        remote_task = ray.remote(run_task)
        cluster_cpus = float(ray.cluster_resources().get("CPU", a.cpus_per_task))
        running: dict = {}  # ObjectRef -> (stage, task, attempt)
        by_id = {s.id: s for s in self.stages}
        failure: str | None = None
        interrupted = False
        started = time.monotonic()
        deadline = started + a.timeout if a.timeout else None
        cancel_deadline: float | None = None

        def submit(stage: _Stage, task: int) -> None:
            stage.attempts[task] += 1
            attempt = stage.attempts[task]
            kill = None
            if self.kill_once and self.kill_once[:2] == (stage.id, task) and attempt == 1:
                kill = self.kill_once[2]
            cpus = self._stage_cpus(stage, cluster_cpus)
            spec = {"sluice": self.sluice, "args": self._task_args(stage, task, cpus),
                    "stage": stage.id, "task": task,
                    "cwd": os.getcwd(), "env": self.env, "kill": kill}
            ref = remote_task.options(**{**options, "num_cpus": cpus}).remote(spec, sink)
            running[ref] = (stage, task, attempt)

        def cancel_all() -> None:
            nonlocal cancel_deadline
            for ref in running:
                ray.cancel(ref)
            cancel_deadline = time.monotonic() + CANCEL_GRACE_S

        def forward_progress() -> None:
            for stage_id, task, line in ray.get(sink.drain.remote()):
                _err(f"[stage {stage_id} task {task}] {line}")

        try:
            while True:
                if failure is None:
                    for s in self.stages:
                        if s.state == "not run" and all(by_id[d].state == "done" for d in s.deps):
                            s.state, s.start = "running", time.monotonic()
                            _err(f"stage {s.id}: starting {s.tasks} task(s)")
                            for t in range(s.tasks):
                                submit(s, t)
                if not running:
                    break
                ready, _ = ray.wait(list(running), num_returns=1, timeout=0.2)
                if ready:
                    ready, _ = ray.wait(list(running), num_returns=len(running), timeout=0)
                forward_progress()
                for ref in ready:
                    stage, task, attempt = running.pop(ref)
                    try:
                        outcome = ray.get(ref)
                    except ray.exceptions.TaskCancelledError:
                        stage.state = "cancelled" if stage.state == "running" else stage.state
                        continue
                    except Exception as e:  # a worker that died, an error in run_task
                        outcome = {"exit_code": None, "error": f"{type(e).__name__}: "
                                   f"{str(e).strip().splitlines()[-1] if str(e).strip() else ''}",
                                   "tail": [], "signal": None, "killed_by_hook": False}
                    if outcome.get("exit_code") == 0:
                        stage.results[task] = outcome
                        if stage.complete():
                            stage.state, stage.end = "done", time.monotonic()
                            _err(f"stage {stage.id}: done in {stage.end - stage.start:.2f} s "
                                 f"({sum(stage.attempts)} attempt(s) for {stage.tasks} task(s))")
                        continue
                    what = _outcome_text(outcome)
                    stage.failed_attempts.append({
                        "task": task, "attempt": attempt, "exit_code": outcome.get("exit_code"),
                        "signal": outcome.get("signal"),
                        "killed_by_hook": bool(outcome.get("killed_by_hook")),
                        "reason": what, "tail": outcome.get("tail", [])[-5:],
                    })
                    if failure is not None:
                        continue
                    retryable = outcome.get("exit_code") != EXIT_USAGE
                    if retryable and attempt <= a.retries:
                        _err(f"[stage {stage.id} task {task}] attempt {attempt} failed ({what}); "
                             f"running it again (attempt {attempt + 1} of {a.retries + 1})")
                        submit(stage, task)
                        continue
                    stage.state, stage.end = "failed", time.monotonic()
                    why = ("bad arguments or an invalid workflow, not retried" if not retryable
                           else f"after {attempt} attempt(s)")
                    tail = "\n".join("    " + line for line in outcome.get("tail", []))
                    failure = (f"stage {stage.id} task {task} failed ({why}): {what}"
                               + (f"\n  its last lines:\n{tail}" if tail else ""))
                    cancel_all()
                now = time.monotonic()
                if failure is None and deadline is not None and now > deadline:
                    busy = sorted({f"stage {s.id} task {t}" for s, t, _ in running.values()})
                    failure = f"the job did not finish within {a.timeout:g} s (unfinished: {', '.join(busy)})"
                    for s in self.stages:
                        if s.state == "running":
                            s.state, s.end = "timed out", now
                    cancel_all()
                if cancel_deadline is not None and now > cancel_deadline and running:
                    _err(f"warning: {len(running)} task(s) did not stop within {CANCEL_GRACE_S:.0f} s of being cancelled")
                    break
        except KeyboardInterrupt:
            interrupted = True
            failure = "interrupted"
            _err("interrupted: cancelling the running tasks")
            for s in self.stages:
                if s.state == "running":
                    s.state, s.end = "interrupted", time.monotonic()
            for ref in running:
                ray.cancel(ref)
            try:
                ray.wait(list(running), num_returns=len(running), timeout=CANCEL_GRACE_S)
            except KeyboardInterrupt:
                pass
        finally:
            try:
                forward_progress()
                ray.kill(sink)
            except Exception:  # Ray itself going down: the lines are lost, not the report
                pass
        elapsed_ms = (time.monotonic() - started) * 1000.0
        report = self.merged_report(elapsed_ms, failure)
        self.print_summary(report)
        self.write_report(report)
        if failure is not None:
            _err(f"error: {failure}")
            return EXIT_INTERRUPTED if interrupted else EXIT_FAILED
        return EXIT_OK

    def merged_report(self, elapsed_ms: float, failure: str | None) -> dict:
        """One report for the job: the stages with their wall times and attempts, and the
        nodes with their counts summed over each stage's tasks."""
        stages, nodes = [], []
        peak_rss, limit, spill_files, spill_bytes = 0, 0, 0, 0
        for s in self.stages:
            reports = [r["report"] for r in s.results if r is not None and r.get("report")]
            for r in reports:
                peak_rss = max(peak_rss, r.get("peak_rss_bytes") or 0)
                limit = max(limit, r.get("memory_limit_bytes") or 0)
                spill_files += r.get("spill_files") or 0
                spill_bytes += r.get("spill_bytes") or 0
            nodes.extend(merge_nodes(s.id, reports))
            stages.append({
                "stage": s.id,
                "tasks": s.tasks,
                "depends_on": s.deps,
                "nodes": s.spec.get("nodes", []),
                "single_task_reason": s.spec.get("single_task_reason"),
                "state": s.state,
                "wall_ms": ((s.end or time.monotonic()) - s.start) * 1000.0 if s.start else None,
                "attempts": sum(s.attempts),
                "task_attempts": list(s.attempts),
                "task_wall_ms": [r["wall_ms"] if r else None for r in s.results],
                "task_hosts": [r.get("host") if r else None for r in s.results],
                "failed_attempts": s.failed_attempts,
                "missing_reports": [{"task": i, "why": r.get("report_error")}
                                    for i, r in enumerate(s.results)
                                    if r is not None and not r.get("report")],
            })
        return {
            "driver": "ray",
            "workflow": self.plan.get("workflow"),
            "workflow_hash": self.plan.get("workflow_hash"),
            "partitions": self.args.partitions,
            "job": self.job,
            "ok": failure is None,
            "error": failure,
            "elapsed_ms": elapsed_ms,
            "peak_rss_bytes": peak_rss,
            "memory_limit_bytes": limit,
            "spill_files": spill_files,
            "spill_bytes": spill_bytes,
            "stages": stages,
            "nodes": nodes,
        }

    @staticmethod
    def print_summary(report: dict) -> None:
        out = sys.stdout
        print(f"{'stage':>5}  {'tasks':>5}  {'attempts':>8}  {'wall':>9}  state", file=out)
        for s in report["stages"]:
            wall = f"{s['wall_ms'] / 1000:.2f} s" if s["wall_ms"] is not None else "-"
            print(f"{s['stage']:>5}  {s['tasks']:>5}  {s['attempts']:>8}  {wall:>9}  {s['state']}", file=out)
        if report["nodes"]:
            width = max(len(str(n["id"])) for n in report["nodes"])
            print(f"{'node':<{width}}  {'stage':>5}  {'tasks':>5}  {'in':>12}  {'out':>12}", file=out)
            for n in report["nodes"]:
                fin = n.get("features_in", "")
                fout = n.get("features_out", "")
                if isinstance(fout, dict):
                    fout = sum(v for v in fout.values() if _is_number(v))
                print(f"{n['id']:<{width}}  {n['stage']:>5}  {n['tasks']:>5}  {fin:>12}  {fout:>12}", file=out)
        state = "ok" if report["ok"] else "failed"
        print(f"{state} in {report['elapsed_ms'] / 1000:.2f} s", file=out, flush=True)

    def write_report(self, report: dict) -> None:
        path = self.args.report
        if path is None and not is_remote(self.job):
            path = os.path.join(self.job, "report.json")
        if path is None:
            return
        path = os.path.abspath(path)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        partial = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.writing-{os.getpid()}")
        with open(partial, "w", encoding="utf-8") as f:
            json.dump(report, f, indent=1)
            f.write("\n")
        os.replace(partial, path)
        _err(f"report: {path}")


def main(argv: list[str] | None = None) -> int:
    """Runs the driver with these arguments (default: the command line); returns the exit
    code. Uses the Ray session of this process when there is one (and leaves it open),
    else starts or joins one for the run."""
    try:
        args = build_parser().parse_args(argv)
        sluice = args.sluice or default_sluice()
        if not sluice:
            raise UsageError("no sluice binary: give --sluice PATH or SLUICE_BIN, build "
                             "target/release/sluice, or put `sluice` on PATH")
        kill_once = parse_kill_once(os.environ.get(KILL_ONCE_ENV))
        driver = Driver(args, sluice, kill_once)
        try:
            importlib.import_module("ray")
        except ImportError as e:
            raise UsageError(f"the `ray` package cannot be imported ({e}); python3 -m pip "
                             "install -r scale/requirements.txt") from None
        return driver.run()
    except UsageError as e:
        _err(f"error: {e}")
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
