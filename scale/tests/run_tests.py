#!/usr/bin/env python3
"""Checks of the Ray driver (scale/ray_driver.py) against the real sluice binary.

    python3 scale/tests/run_tests.py

Uses the binary in SLUICE_BIN, else target/release/sluice, else target/debug/sluice (it builds
nothing). Skips, saying why, when `ray` cannot be imported; the S3 part skips when moto is
not installed or the binary has no S3 support. Exits 1 when a check fails.

What it checks:
- For N = 1, 2 and 4 partitions, through the driver in Ray local mode (one Ray session for
  all runs): W1 (30,000 generated rows), workflows/tabular.yaml (join + statistics) and
  workflows/districts.yaml (geometry) write exactly the files, byte for byte, that a
  single-process `sluice run` with the same variables writes; the merged report counts what
  the single run counts; the job folder holds no temporary file.
- Faults: the first attempt of W1's stage 0 task 1 (N = 2) is sent SIGKILL mid-way: the driver
  runs it again, the output is the same, no temporary file is left; with --retries 0 the
  driver fails instead, naming the stage and task, and writes no output.
- Bad input through the binary: `--partition 5/4` (exit 1), a stage run before the stage it
  reads, or before one task of it (exit 2, naming what is missing), a job folder of another
  workflow (exit 2).
- S3: the W1 job through `s3://BUCKET/job1` on a moto server on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.dont_write_bytecode = True  # no __pycache__ beside the driver

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(REPO, "scale"))

import ray_driver  # noqa: E402

# The whole run is stopped (exit 1) after this long, whatever hangs.
WATCHDOG_S = 420
# Limit of one driver run (its --timeout) and of one direct call of the binary.
RUN_TIMEOUT_S = 120
W1_ROWS = 30000
BUCKET = "sluice-scale-test"

failures: list[str] = []


def check(ok: bool, what: str, detail: str = "") -> bool:
    print(("ok    " if ok else "FAIL  ") + what, flush=True)
    if not ok:
        failures.append(what)
        if detail:
            print("      " + detail.rstrip().replace("\n", "\n      "), flush=True)
    return ok


def find_binary() -> str | None:
    for candidate in (os.environ.get("SLUICE_BIN"),
                      os.path.join(REPO, "target", "release", "sluice"),
                      os.path.join(REPO, "target", "debug", "sluice")):
        if candidate and os.access(candidate, os.X_OK):
            return os.path.abspath(candidate)
    return None


def sluice(binary: str, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=RUN_TIMEOUT_S,
                          stdin=subprocess.DEVNULL, env=env)


def var_args(variables: list[str]) -> list[str]:
    return [a for v in variables for a in ("--var", v)]


def run_driver(argv: list[str]) -> tuple[int, str, str]:
    """The driver's main() in this process (sharing its Ray session), output captured."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        rc = ray_driver.main(argv)
    return rc, out.getvalue(), err.getvalue()


def files_under(folder: str) -> dict[str, str]:
    """Relative path -> absolute path of every file under folder (empty when none)."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            found[os.path.relpath(path, folder)] = path
    return found


def same_files(expected_dir: str, got_dir: str) -> tuple[bool, str]:
    expected, got = files_under(expected_dir), files_under(got_dir)
    if not expected:
        return False, f"the single-process run wrote nothing under {expected_dir}"
    if set(expected) != set(got):
        return False, f"files differ: expected {sorted(expected)}, got {sorted(got)}"
    for rel, path in sorted(expected.items()):
        with open(path, "rb") as a, open(got[rel], "rb") as b:
            x, y = a.read(), b.read()
        if x != y:
            at = next((i for i, (p, q) in enumerate(zip(x, y)) if p != q), min(len(x), len(y)))
            return False, (f"{rel}: {len(x)} bytes expected, {len(y)} written; first difference "
                           f"at byte {at}")
    return True, ""


def temporary_names(folder: str) -> list[str]:
    return sorted(rel for rel in files_under(folder) if "tmp" in rel.lower())


def tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.rstrip().splitlines()[-lines:])


# ---------------------------------------------------------------------------------------------


def check_driver_units() -> None:
    """The driver's plan checks and report merging, without Ray."""
    print("\n== driver: plan checks and report merging (no Ray)")
    stage = {"stage": 0, "tasks": 4, "depends_on": [], "nodes": []}
    good = {"version": 1, "partitions": 4, "stages": [stage, {**stage, "stage": 1, "tasks": 1, "depends_on": [0]}]}
    try:
        ray_driver.check_plan(good, 4)
        check(True, "a plan with stages of N and 1 tasks in dependency order is accepted")
    except ray_driver.UsageError as e:
        check(False, "a plan with stages of N and 1 tasks in dependency order is accepted", str(e))
    bad = [
        ({**good, "version": 2}, "version"),
        ({**good, "partitions": 3}, "partitions"),
        ({**good, "stages": [{**stage, "tasks": 3}]}, "3 tasks"),
        ({**good, "stages": [{**stage, "depends_on": [1]}, {**stage, "stage": 1}]}, "not listed before"),
    ]
    for plan, words in bad:
        try:
            ray_driver.check_plan(plan, 4)
            check(False, f"a plan with a wrong {words!r} is refused", "it was accepted")
        except ray_driver.UsageError as e:
            check(words in str(e), f"a plan with a wrong {words!r} is refused, saying so", str(e))
    reports = [
        {"nodes": [{"id": "r", "action": "csv_reader", "features_in": 0, "features_out": 7,
                    "ports": [["default", 7], ["rejected", 0]], "elapsed_ms": 5.0, "timeline": [1]}]},
        {"nodes": [{"id": "r", "action": "csv_reader", "features_in": 0, "features_out": 5,
                    "ports": [["default", 4], ["rejected", 1]], "elapsed_ms": 9.0, "timeline": [2]}]},
    ]
    merged = ray_driver.merge_nodes(3, reports)
    expected = [{"id": "r", "stage": 3, "tasks": 2, "action": "csv_reader", "features_in": 0,
                 "features_out": 12, "ports": {"default": 11, "rejected": 1}, "elapsed_ms": 9.0}]
    check(merged == expected, "two task reports merge into summed counts per node and port",
          f"got {merged}")
    obj = ray_driver.merge_nodes(0, [{"nodes": [{"id": "s", "features_out": {"default": 2}, "state": "finished"}]},
                                     {"nodes": [{"id": "s", "features_out": {"default": 3, "x": 1}, "state": "failed"}]}])
    check(obj[0]["features_out"] == {"default": 5, "x": 1} and obj[0]["state"] == ["finished", "failed"],
          "features_out as a port -> count object is summed per port; differing states are listed",
          f"got {obj}")
    for text, ok in (("0:1:250", (0, 1, "250")), ("2:0:line", (2, 0, "line"))):
        check(ray_driver.parse_kill_once(text) == ok, f"{ray_driver.KILL_ONCE_ENV}={text} is read")
    for text in ("0:1", "a:1:5", "0:1:-5"):
        try:
            ray_driver.parse_kill_once(text)
            check(False, f"{ray_driver.KILL_ONCE_ENV}={text} is refused")
        except ray_driver.UsageError:
            check(True, f"{ray_driver.KILL_ONCE_ENV}={text} is refused")
    rc, _, err = run_driver(["x.yaml", "--partitions", "0", "--job", "j"])
    check(rc == 1 and "--partitions" in err, "the driver exits 1 on --partitions 0, naming it", err)


class Case:
    """A workflow with its variables, pointed at one output folder."""

    def __init__(self, name: str, workflow: str, variables):
        self.name = name
        self.workflow = os.path.join(REPO, workflow)
        self.variables = variables  # out_dir -> ["k=v", ...]


def reference_run(binary: str, case: Case, out_dir: str) -> dict | None:
    os.makedirs(out_dir, exist_ok=True)
    report = out_dir + ".report.json"
    done = sluice(binary, "run", case.workflow, *var_args(case.variables(out_dir)),
                  "--quiet", "--report", report)
    if not check(done.returncode == 0, f"{case.name}: single-process reference run", done.stderr):
        return None
    with open(report, encoding="utf-8") as f:
        return json.load(f)


class Run:
    """One driver run: exit code, output folder, job folder, merged report, all it printed."""

    def __init__(self, rc: int, out_dir: str, job: str, report: dict | None, output: str):
        self.rc, self.out_dir, self.job, self.report, self.output = rc, out_dir, job, report, output


def driver_run(binary: str, case: Case, partitions: int, work: str, extra: tuple[str, ...] = (),
               label: str = "") -> Run:
    """Runs case through the driver, into fresh output and job folders named after label."""
    label = label or f"{case.name} N={partitions}"
    slug = label.replace(" ", "_").replace("=", "")
    out_dir = os.path.join(work, "out", slug)
    job = os.path.join(work, "jobs", slug)
    argv = [case.workflow, "--partitions", str(partitions), "--job", job, "--sluice", binary,
            "--timeout", str(RUN_TIMEOUT_S), *var_args(case.variables(out_dir)), *extra]
    started = time.monotonic()
    rc, out, err = run_driver(argv)
    print(f"      ({label}: {time.monotonic() - started:.1f} s)", flush=True)
    report = None
    if os.path.exists(os.path.join(job, "report.json")):
        with open(os.path.join(job, "report.json"), encoding="utf-8") as f:
            report = json.load(f)
    return Run(rc, out_dir, job, report, out + err)


def check_case(binary: str, case: Case, partitions: int, work: str, ref_dir: str,
               reference: dict, extra: tuple[str, ...] = ()) -> Run:
    label = f"{case.name} N={partitions}"
    run = driver_run(binary, case, partitions, work, extra=extra)
    report, output = run.report, run.output
    if not check(run.rc == 0, f"{label}: the driver succeeds", tail(output)):
        return run
    same, why = same_files(ref_dir, run.out_dir)
    check(same, f"{label}: every output file is byte-identical to the single-process run", why)
    check(not temporary_names(run.job), f"{label}: no temporary file in the job folder",
          ", ".join(temporary_names(run.job)))
    if not check(report is not None and report.get("ok") is True,
                 f"{label}: DIR/report.json is written and says ok", tail(output)):
        return run
    layout = ", ".join(f"stage {s['stage']}: {s['tasks']} task(s)" for s in report["stages"])
    print(f"      ({label}: {layout})")
    check(all(s["state"] == "done" and s["attempts"] == s["tasks"] for s in report["stages"]),
          f"{label}: every stage done, one attempt per task", json.dumps(report["stages"])[:1500])
    if case.name == "w1":
        check(report["stages"][0]["tasks"] == partitions,
              f"{label}: stage 0 (read, compute, filter) runs as {partitions} task(s)", layout)
    if "--memory-limit" in extra:
        want = ray_driver.parse_size(extra[extra.index("--memory-limit") + 1])
        check(report.get("memory_limit_bytes") == want,
              f"{label}: --memory-limit reaches the tasks ({want} bytes in their reports)",
              f"got {report.get('memory_limit_bytes')}")
    mismatches = []
    for node in reference["nodes"]:
        merged = [n for n in report["nodes"] if n["id"] == node["id"]]
        if len(merged) != 1:
            mismatches.append(f"{node['id']}: {len(merged)} entries in the merged report")
            continue
        for field in ("features_in", "features_out", "features_dropped", "ports"):
            want, got = ray_driver._as_counts(node.get(field)), merged[0].get(field)
            if want != got:
                mismatches.append(f"{node['id']}.{field}: single run {want}, merged {got}")
    check(not mismatches,
          f"{label}: merged report: every node's counts (in, out, dropped, per port) are the single run's",
          "\n".join(mismatches))
    last = report["stages"][-1]["stage"]
    check(f"[stage {last} task 0] " in output,
          f"{label}: the tasks' output is forwarded with its [stage K task I] prefix",
          tail(output))
    return run


def check_faults(binary: str, w1: Case, work: str, ref_dir: str, plain: Run | None) -> None:
    print("\n== faults: a task killed mid-way (SIGKILL) on its first attempt")
    # At its first output line the task is reading; a task that printed nothing in the plain
    # run gets a delay of half its plain wall time instead.
    when = "line"
    if plain is not None and plain.report and "[stage 0 task 1] " not in plain.output:
        wall = plain.report["stages"][0]["task_wall_ms"][1]
        when = str(max(1, int(wall / 2)))
        print(f"      (stage 0 task 1 printed nothing in the plain run: killing it after {when} ms)")
    os.environ[ray_driver.KILL_ONCE_ENV] = f"0:1:{when}"
    try:
        run = driver_run(binary, w1, 2, work, label="w1 N=2 killed")
        report, output = run.report, run.output
        if check(run.rc == 0, "killed once: the driver runs the task again and succeeds", tail(output)):
            stage0 = report["stages"][0]
            kills = [f for f in stage0["failed_attempts"] if f["task"] == 1 and f["attempt"] == 1]
            check(bool(kills) and kills[0]["killed_by_hook"] and kills[0]["signal"] == "SIGKILL",
                  "killed once: the first attempt of stage 0 task 1 was ended by SIGKILL while running",
                  json.dumps(stage0)[:1500])
            check(stage0["task_attempts"] == [1, 2],
                  "killed once: stage 0 task 1 took 2 attempts, task 0 one",
                  f"got {stage0['task_attempts']}")
            check("attempt 1 failed" in output and "attempt 2 of 3" in output,
                  "killed once: the driver says it runs the task again", tail(output))
            same, why = same_files(ref_dir, run.out_dir)
            check(same, "killed once: the output is byte-identical to the single-process run", why)
            check(not temporary_names(run.job), "killed once: no temporary file left in the job folder",
                  ", ".join(temporary_names(run.job)))
        run = driver_run(binary, w1, 2, work, extra=("--retries", "0"), label="w1 N=2 killed no retry")
        rc, report, output = run.rc, run.report, run.output
        check(rc == 2 and "stage 0 task 1 failed" in output and "SIGKILL" in output,
              "killed with --retries 0: the driver exits 2 naming stage 0 task 1 and SIGKILL",
              f"exit code {rc}\n{tail(output)}")
        check("its last lines" in output, "killed with --retries 0: the task's last lines are shown",
              tail(output))
        check(not files_under(run.out_dir), "killed with --retries 0: no output is written",
              ", ".join(files_under(run.out_dir)))
        check(report is not None and report["ok"] is False and report["stages"][-1]["state"] == "not run",
              "killed with --retries 0: the report says failed, the last stage did not run",
              json.dumps(report)[:1500] if report else "no report")
    finally:
        del os.environ[ray_driver.KILL_ONCE_ENV]


def check_bad_input(binary: str, w1: Case, tabular: Case, work: str) -> None:
    print("\n== bad input, through the binary")
    out = os.path.join(work, "out", "bad")
    w1_vars = var_args(w1.variables(out))
    done = sluice(binary, "run", w1.workflow, *w1_vars, "--stage", "0", "--partition", "5/4",
                  "--job", os.path.join(work, "jobs", "bad-partition"))
    check(done.returncode == 1 and re.search(r"5/4|partition\D{0,20}5\b", done.stderr) is not None,
          "--partition 5/4: exit 1, the message names the partition",
          f"exit code {done.returncode}\n{done.stderr}")

    planned = sluice(binary, "plan", w1.workflow, "--partitions", "2", *w1_vars, "--json")
    try:
        plan = json.loads(planned.stdout)
    except json.JSONDecodeError:
        check(False, "sluice plan --json prints W1's plan", planned.stderr)
        return
    later = next((s for s in plan["stages"] if s["depends_on"]), None)
    if not check(later is not None, "W1's plan (N=2) has a stage that reads an earlier one", json.dumps(plan)):
        return
    dep = later["depends_on"][0]
    run_later = ["run", w1.workflow, *w1_vars, "--stage", str(later["stage"]), "--partition", "0/2"]
    job = os.path.join(work, "jobs", "bad-order")
    done = sluice(binary, *run_later, "--job", job)
    check(done.returncode == 2 and re.search(r"missing|not found|no such|does not exist", done.stderr, re.I)
          and (f"stage {dep}" in done.stderr or job in done.stderr),
          f"stage {later['stage']} before stage {dep} ran: exit 2, the message names what is missing",
          f"exit code {done.returncode}\n{done.stderr}")

    job = os.path.join(work, "jobs", "bad-half")
    first = sluice(binary, "run", w1.workflow, *w1_vars, "--stage", str(dep), "--partition", "0/2",
                   "--job", job, "--quiet")
    if check(first.returncode == 0, f"W1 stage {dep} task 0 runs into a fresh job folder", first.stderr):
        done = sluice(binary, *run_later, "--job", job)
        check(done.returncode == 2 and f"stage {dep} task 1" in done.stderr
              and re.search(r"missing|not found|no such|does not exist", done.stderr, re.I),
              f"stage {later['stage']} with stage {dep} task 1 not run: exit 2, the message names that task's output",
              f"exit code {done.returncode}\n{done.stderr}")
        check(not files_under(out), "a stage refused for a missing input writes no output",
              ", ".join(files_under(out)))
        done = sluice(binary, "run", tabular.workflow, *var_args(tabular.variables(out)), "--stage", "0",
                      "--partition", "0/2", "--job", job)
        check(done.returncode == 2 and re.search(r"another workflow|hash", done.stderr, re.I) is not None,
              "tabular into W1's job folder: exit 2, the message says it is another workflow",
              f"exit code {done.returncode}\n{done.stderr}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def check_s3(binary: str, w1: Case, work: str, ref_dir: str) -> None:
    print("\n== S3: the W1 job through s3:// (moto server on 127.0.0.1)")
    try:
        import boto3
        importlib.import_module("moto.server")  # the server's own dependencies (flask...)
    except ImportError as e:
        print(f"SKIP  S3: moto or boto3 cannot be imported ({e}); "
              "python3 -m pip install 'moto[server]' boto3")
        return
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    log = open(os.path.join(work, "moto.log"), "wb")
    server = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                              stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(endpoint + "/", timeout=2).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    check(False, "S3: the moto server starts", open(log.name, errors="replace").read()[-2000:])
                    return
                time.sleep(0.2)
        aws = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": endpoint}
        client = boto3.client("s3", endpoint_url=endpoint, region_name=aws["AWS_REGION"],
                              aws_access_key_id="testing", aws_secret_access_key="testing")
        client.create_bucket(Bucket=BUCKET)
        with open(os.path.join(REPO, "data", "places.csv"), "rb") as f:
            places = f.read()
        client.put_object(Bucket=BUCKET, Key="probe/places.csv", Body=places)

        probe_out = os.path.join(work, "out", "s3-probe", "places.csv")
        done = sluice(binary, "run", os.path.join(REPO, "workflows", "csv_copy.yaml"),
                      "--var", f"input=s3://{BUCKET}/probe/places.csv", "--var", f"output={probe_out}",
                      "--quiet", env={**os.environ, **aws})
        if "no s3 support" in done.stderr:
            print("SKIP  S3: this sluice binary has no S3 support (build it with the `s3` cargo "
                  "feature)")
            return
        if not check(done.returncode == 0, "S3: sluice reads s3:// from moto with the AWS_* environment",
                     done.stderr):
            return
        with open(probe_out, "rb") as f:
            check(f.read() == places, "S3: the file read from s3:// is the one put there")

        report_path = os.path.join(work, "s3-report.json")
        out_dir = os.path.join(work, "out", "w1_N2_s3")
        argv = [w1.workflow, "--partitions", "2", "--job", f"s3://{BUCKET}/job1", "--sluice", binary,
                "--timeout", str(RUN_TIMEOUT_S), "--report", report_path,
                *var_args(w1.variables(out_dir)), *[a for k in aws for a in ("--env", k + "=" + aws[k])]]
        rc, out, err = run_driver(argv)
        if not check(rc == 0, "S3: the driver runs W1 (N=2) with --job s3://BUCKET/job1", tail(out + err)):
            return
        same, why = same_files(ref_dir, out_dir)
        check(same, "S3: the output is byte-identical to the single-process run", why)
        keys = [o["Key"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix="job1/")
                for o in page.get("Contents", [])]
        check(bool(keys), "S3: the stages exchanged their data under s3://BUCKET/job1/", "no object there")
        check(not [k for k in keys if "tmp" in k.lower()], "S3: no temporary object left under job1/",
              ", ".join(k for k in keys if "tmp" in k.lower()))
        with open(report_path, encoding="utf-8") as f:
            check(json.load(f).get("ok") is True, "S3: the merged report is written to --report")
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def main() -> int:
    watchdog = threading.Timer(WATCHDOG_S, lambda: (print(f"FAIL  the checks did not end within {WATCHDOG_S} s",
                                                          flush=True), os._exit(1)))
    watchdog.daemon = True
    watchdog.start()
    started = time.monotonic()
    try:
        import ray
    except ImportError as e:
        print(f"SKIP  scale-out checks: `ray` cannot be imported ({e}); "
              "python3 -m pip install -r scale/requirements.txt")
        return 0
    binary = find_binary()
    if binary is None:
        print("FAIL  no sluice binary: set SLUICE_BIN or build target/release/sluice or target/debug/sluice")
        return 1
    print(f"sluice binary: {binary}")

    work = tempfile.mkdtemp(prefix="sluice-scale-")
    data = os.path.join(work, "w1.csv")
    w1 = Case("w1", "workflows/w1.yaml", lambda out: [f"input={data}", f"output={out}/w1_sorted.csv"])
    tabular = Case("tabular", "workflows/tabular.yaml", lambda out: [f"out_dir={out}"])
    districts = Case("districts", "workflows/districts.yaml", lambda out: [f"out_dir={out}"])
    try:
        check_driver_units()
        print("\n== single-process reference runs")
        done = sluice(binary, "generate", "w1", "--rows", str(W1_ROWS), "--out", data)
        if not check(done.returncode == 0, f"generate {W1_ROWS} W1 rows", done.stderr):
            return 1
        refs = {}
        for case in (w1, tabular, districts):
            ref_dir = os.path.join(work, "ref", case.name)
            report = reference_run(binary, case, ref_dir)
            if report is not None:
                refs[case.name] = (ref_dir, report)

        print("\n== partitioned runs through the driver (Ray local mode, one session)")
        t = time.monotonic()
        ray.init(num_cpus=4, include_dashboard=False)
        print(f"      (Ray started in {time.monotonic() - t:.1f} s)")
        w1_n2 = None
        for partitions in (1, 2, 4):
            for case in (w1, tabular, districts):
                if case.name not in refs:
                    continue
                ref_dir, ref_report = refs[case.name]
                # One run also gives the tasks a memory limit (and Ray a memory reservation).
                extra = ("--memory-limit", "256MB") if (case is w1 and partitions == 4) else ()
                run = check_case(binary, case, partitions, work, ref_dir, ref_report, extra)
                if case is w1 and partitions == 2:
                    w1_n2 = run
        if "w1" in refs:
            check_faults(binary, w1, work, refs["w1"][0], w1_n2)
        check_bad_input(binary, w1, tabular, work)
        if "w1" in refs:
            check_s3(binary, w1, work, refs["w1"][0])
    finally:
        with contextlib.suppress(Exception):
            ray.shutdown()
        if failures:
            print(f"\n(kept {work} for a look)")
        else:
            shutil.rmtree(work, ignore_errors=True)
    print(f"\n{'FAILED: ' + str(len(failures)) + ' check(s)' if failures else 'all checks passed'} "
          f"in {time.monotonic() - started:.0f} s")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
