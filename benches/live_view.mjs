// Does watching a run in a browser slow it? W1 (2,000,000 generated rows; BENCH_ROWS changes
// it) run with `sluice run --quiet` and with `sluice run --quiet --ui` with a headless
// Chromium page attached, in turns (A B A B ..., BENCH_ROUNDS pairs, 3 by default). Whole
// process wall time, medians, and their ratio (the bar: at most 1.05).
//
//   cargo build --release
//   tests/browser/run.sh            # once: installs playwright-core under target/browser/
//   node benches/live_view.mjs [path/to/sluice]
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";

const root = resolve(new URL("..", import.meta.url).pathname);
const sluice = resolve(process.argv[2] || join(root, "target/release/sluice"));
const require = createRequire(join(root, "target/browser/package.json"));
const { chromium } = require("playwright-core");
const rows = process.env.BENCH_ROWS || "2000000";
const rounds = Number(process.env.BENCH_ROUNDS || 3);

function exec(args, cwd, onUrl) {
  return new Promise((done, fail) => {
    const t0 = process.hrtime.bigint();
    const child = spawn(sluice, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
    let out = "", err = "", told = false;
    child.stdout.on("data", (d) => {
      out += d;
      if (onUrl && !told && out.includes("\n")) {
        told = true;
        onUrl(out.split("\n")[0].trim());
      }
    });
    child.stderr.on("data", (d) => (err += d));
    child.on("exit", (code) => {
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      if (code !== 0) fail(new Error(`sluice ${args.join(" ")}: exit ${code}\n${err}`));
      else done(s);
    });
  });
}

/** CPU seconds used so far by every Chromium process (Linux /proc; 0 elsewhere). */
function browserCpu() {
  let ticks = 0;
  try {
    for (const pid of readdirSync("/proc")) {
      if (!/^\d+$/.test(pid)) continue;
      try {
        if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("chromium")) continue;
        const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
        ticks += Number(f[11]) + Number(f[12]);
      } catch {}
    }
  } catch {}
  return ticks / 100;
}

const median = (v) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)];

const work = mkdtempSync(join(tmpdir(), "sluice-live-bench-"));
try {
  await exec(["generate", "w1", "--rows", rows, "--out", join(work, "w1.csv")], work);
  const args = ["run", join(root, "workflows/w1.yaml"), "--quiet",
    "--var", `input=${join(work, "w1.csv")}`, "--var", `output=${join(work, "out.csv")}`];
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  await exec(args, work); // warm the page cache
  const plain = [], watched = [];
  for (let r = 0; r < rounds; r++) {
    const report = join(work, "run.json");
    const ran = () => JSON.parse(readFileSync(report, "utf8")).elapsed_ms / 1000;
    const a = await exec([...args, "--report", report], work);
    const aRun = ran();
    const page = await browser.newPage();
    let opened;
    const cpu0 = browserCpu();
    const b = await exec([...args, "--report", report, "--ui"], work, (url) => { opened = page.goto(url); });
    const bRun = ran();
    const cpu = browserCpu() - cpu0;
    await opened?.catch(() => {});
    const updates = await page.evaluate(() => Number(document.querySelector('g.edge text')?.dataset.count || 0)).catch(() => -1);
    await page.close();
    console.log(`round ${r}: plain ${a.toFixed(2)} s (run ${aRun.toFixed(2)} s), with the live view ${b.toFixed(2)} s (run ${bRun.toFixed(2)} s; browser CPU ${cpu.toFixed(2)} s; page's first edge count at the end: ${updates})`);
    plain.push(a);
    watched.push(b);
  }
  await browser.close();
  const a = median(plain), b = median(watched);
  console.log(`W1 ${rows} rows, medians of ${rounds}: plain ${a.toFixed(2)} s, live view ${b.toFixed(2)} s, ratio ${(b / a).toFixed(3)} (bar: at most 1.05)`);
} finally {
  rmSync(work, { recursive: true, force: true });
}
