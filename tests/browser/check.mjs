// The live view in a real browser (headless Chromium driven by playwright-core; no browser
// download). Called by tests/browser/run.sh with: the sluice binary, a work folder, and where
// to save screenshots.
//
// 1. A run of a few seconds: counts rise on the page while it goes; at its end the page's
//    per-edge counts equal the run report's; a captured edge previews as a table.
// 2. A 200-node chain renders and updates without a main-thread task over 100 ms.
// 3. Cancel on the page of `sluice run --ui`: exit 130 and no output files.
import { spawn } from "node:child_process";
import { existsSync, readdirSync, readFileSync, writeFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { availableParallelism } from "node:os";

const [sluice, work, shots, playwrightDir] = process.argv.slice(2);
const require = createRequire(join(playwrightDir, "package.json"));
const { chromium } = require("playwright-core");
const LIMIT_MS = Number(process.env.BROWSER_TIMEOUT_MS || 240000);
const LONG_TASK_LIMIT_MS = 100;

const failures = [];
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures.push(what);
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const children = [];
/** Starts sluice; resolves with {url, child, exited} once it printed its URL. */
function start(args, cwd, { apart = false } = {}) {
  // Apart: the run on the last core only, so that on a small machine its busy threads do
  // not starve the browser: what is measured is the page's own work.
  const cores = availableParallelism();
  const child = apart && cores > 1
    ? spawn("taskset", ["-c", String(cores - 1), sluice, ...args], { cwd, stdio: ["ignore", "pipe", "pipe"] })
    : spawn(sluice, args, { cwd, stdio: ["ignore", "pipe", "pipe"] });
  children.push(child);
  let err = "";
  child.stderr.on("data", (d) => (err += d));
  const exited = new Promise((r) => child.on("exit", (code, signal) => r({ code, signal, err })));
  return new Promise((resolve, reject) => {
    let out = "";
    child.stdout.on("data", (d) => {
      out += d;
      const line = out.split("\n")[0];
      if (out.includes("\n")) resolve({ url: line.trim(), child, exited, stderr: () => err });
    });
    exited.then((e) => reject(new Error(`sluice ${args.join(" ")} exited early: ${e.code} ${e.err}`)));
  });
}

async function run(args, cwd) {
  const child = spawn(sluice, args, { cwd, stdio: "inherit" });
  const code = await new Promise((r) => child.on("exit", r));
  if (code !== 0) throw new Error(`sluice ${args.join(" ")}: exit ${code}`);
}

/** The page's per-edge counts, by edge name. */
async function pageCounts(page) {
  return page.$$eval("g.edge", (gs) =>
    Object.fromEntries(gs.map((g) => [g.dataset.edge, Number(g.querySelector("text").dataset.count)])),
  );
}

/** Long main-thread tasks recorded since the page loaded (PerformanceObserver). */
const LONG_TASKS = `
  window.__longTasks = [];
  new PerformanceObserver((l) => { for (const e of l.getEntries()) window.__longTasks.push(e.duration); })
    .observe({ type: "longtask", buffered: true });
`;

async function main() {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  try {
    // ---- 1. a run of a few seconds ---------------------------------------------------
    const a = join(work, "a");
    mkdirSync(a, { recursive: true });
    await run(["generate", "w1", "--rows", process.env.BROWSER_ROWS || "600000", "--out", join(a, "in.csv")], a);
    writeFileSync(join(a, "wf.yaml"), [
      "name: browser",
      "nodes:",
      "  - { id: read, action: csv_reader, with: { path: in.csv } }",
      "  - { id: keep, action: filter, with: { conditions: [ { port: kept, expression: \"value > 100\" } ] } }",
      "  - { id: order, action: sort, with: { by: [ { attribute: value } ] } }",
      "  - { id: write, action: csv_writer, with: { path: out/sorted.csv } }",
      "  - { id: rest, action: csv_writer, with: { path: out/rest.csv } }",
      "edges:",
      "  - read -> keep",
      "  - { from: keep.kept, to: order, capture: true }",
      "  - keep.unfiltered -> rest",
      "  - order -> write",
      "",
    ].join("\n"));
    const served = await start(["serve", "wf.yaml", "--no-start", "--report", "run.json", "--capture", "keep.kept->order"], a, { apart: true });
    const page = await browser.newPage({ viewport: { width: 1400, height: 700 } });
    await page.addInitScript(LONG_TASKS);
    await page.goto(served.url);
    await page.waitForSelector("g.node");
    check((await page.$$("g.node")).length === 5, "the page draws the 5 nodes");
    await page.click("#again");
    await page.waitForFunction(() => document.querySelector("#status").dataset.status === "running");
    await page.waitForFunction(() => Number(document.querySelector('g.edge[data-edge="read->keep"] text').dataset.count) > 0);
    const first = (await pageCounts(page))["read->keep"];
    await sleep(400);
    const status = await page.$eval("#status", (s) => s.dataset.status);
    const second = (await pageCounts(page))["read->keep"];
    check(status !== "running" || second > first, `counts rise while the run goes (${first} then ${second})`);
    check(first < 600000, `the page showed a count before the end (${first})`);
    await page.screenshot({ path: join(shots, "live-view-running.png") });
    await page.waitForFunction(() => document.querySelector("#status").dataset.status === "succeeded", null, { timeout: LIMIT_MS });
    // The last snapshot comes with the end: give the page a moment to draw it.
    await sleep(300);
    // Edges in plan order on the page (DOM order) and in the report.
    const shown = await page.$$eval("g.edge", (gs) => gs.map((g) => Number(g.querySelector("text").dataset.count)));
    const report = JSON.parse(readFileSync(join(a, "run.json"), "utf8"));
    const fromReport = report.edges.map((e) => e.features);
    check(shown.length === 4 && JSON.stringify(shown) === JSON.stringify(fromReport),
      `the page's per-edge counts equal the report's: ${JSON.stringify(shown)} vs ${JSON.stringify(fromReport)}`);
    // A captured edge previews as a table.
    await page.click('g.edge[data-edge="keep.kept->order"] text');
    await page.waitForSelector("#panel table tbody tr");
    const rows = await page.$$eval("#panel table tbody tr", (t) => t.length);
    const header = await page.$$eval("#panel table th", (t) => t.map((h) => h.textContent));
    check(rows > 0 && header.includes("value"), `the captured edge previews (${rows} rows, columns ${header})`);
    await page.screenshot({ path: join(shots, "live-view.png") });
    const long1 = await page.evaluate(() => window.__longTasks);
    check(Math.max(0, ...long1) <= LONG_TASK_LIMIT_MS, `no main-thread task over ${LONG_TASK_LIMIT_MS} ms (longest ${Math.max(0, ...long1)})`);
    await page.close();
    served.child.kill("SIGINT");
    const end = await served.exited;
    check(end.code === 0, `serve stops on SIGINT (exit ${end.code})`);

    // ---- 2. 200 nodes ------------------------------------------------------------------
    const b = join(work, "b");
    mkdirSync(b, { recursive: true });
    await run(["generate", "w1", "--rows", "200000", "--out", join(b, "in.csv")], b);
    const lines = ["name: chain200", "nodes:", "  - { id: read, action: csv_reader, with: { path: in.csv } }"];
    const edges = [];
    let prev = "read";
    for (let i = 1; i <= 198; i++) {
      lines.push(`  - { id: f${i}, action: filter, with: { conditions: [ { port: kept, expression: "value > -1" } ] } }`);
      edges.push(`  - ${prev}${prev === "read" ? "" : ".kept"} -> f${i}`);
      prev = `f${i}`;
    }
    lines.push("  - { id: write, action: csv_writer, with: { path: out/chain.csv } }");
    edges.push(`  - ${prev}.kept -> write`);
    writeFileSync(join(b, "wf.yaml"), [...lines, "edges:", ...edges, ""].join("\n"));
    const chain = await start(["serve", "wf.yaml", "--no-start"], b, { apart: true });
    const page2 = await browser.newPage({ viewport: { width: 1400, height: 700 } });
    await page2.addInitScript(LONG_TASKS);
    await page2.goto(chain.url);
    await page2.waitForFunction(() => document.querySelectorAll("g.node").length === 200);
    check((await page2.$$("g.edge")).length === 199, "the page draws 200 nodes and 199 edges");
    await page2.click("#again");
    await page2.waitForFunction(() => ["succeeded", "failed"].includes(document.querySelector("#status").dataset.status), null, { timeout: LIMIT_MS });
    const last = await pageCounts(page2);
    check(last["f198.kept->write"] === 200000, `the chain's last edge shows 200,000 (${last["f198.kept->write"]})`);
    const long2 = await page2.evaluate(() => window.__longTasks);
    const slowest = await page2.evaluate(() => window.sluiceView.slowestUpdateMs);
    check(slowest <= LONG_TASK_LIMIT_MS, `200 nodes: the slowest update took ${slowest.toFixed(1)} ms`);
    check(Math.max(0, ...long2) <= LONG_TASK_LIMIT_MS,
      `200 nodes: no main-thread task over ${LONG_TASK_LIMIT_MS} ms (longest ${Math.max(0, ...long2)}, ${long2.length} over 50 ms)`);
    await page2.screenshot({ path: join(shots, "live-view-200.png") });
    await page2.close();
    chain.child.kill("SIGINT");
    await chain.exited;

    // ---- 3. Cancel on the page of `run --ui` -------------------------------------------
    const c = join(work, "c");
    mkdirSync(c, { recursive: true });
    await run(["generate", "w1", "--rows", process.env.BROWSER_ROWS || "600000", "--out", join(c, "in.csv")], c);
    // The same workflow without its captured edge (a cancelled capture job is kept on purpose).
    writeFileSync(join(c, "wf.yaml"), readFileSync(join(a, "wf.yaml"), "utf8").replace(", capture: true", ""));
    const ui = await start(["run", "wf.yaml", "--ui", "--quiet"], c);
    const page3 = await browser.newPage();
    await page3.goto(ui.url);
    await page3.waitForFunction(() => document.querySelector("#status").dataset.status === "running");
    await page3.click("#cancel");
    const out = await ui.exited;
    check(out.code === 130, `Cancel on the page ends the run with exit 130 (got ${out.code}: ${out.err.trim()})`);
    const left = readdirSync(c).filter((f) => f !== "in.csv" && f !== "wf.yaml");
    check(left.length === 0 && !existsSync(join(c, "out")), `no output files after Cancel (${left})`);
    await page3.close();
  } finally {
    await browser.close();
    for (const ch of children) if (ch.exitCode === null) ch.kill("SIGKILL");
  }
}

const timer = setTimeout(() => {
  console.log(`browser: not done within ${LIMIT_MS} ms`);
  for (const ch of children) if (ch.exitCode === null) ch.kill("SIGKILL");
  process.exit(2);
}, LIMIT_MS + 60000);
main()
  .then(() => {
    clearTimeout(timer);
    if (failures.length) {
      console.log(`browser: ${failures.length} check(s) failed`);
      process.exit(1);
    }
    console.log("browser: ok");
  })
  .catch((e) => {
    clearTimeout(timer);
    console.log(`browser: ${e.stack || e}`);
    for (const ch of children) if (ch.exitCode === null) ch.kill("SIGKILL");
    process.exit(1);
  });
