// The sluice live view: draws the workflow from /api/graph, follows /api/events, and asks
// the server to cancel or run again. No framework and nothing fetched from elsewhere.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const token = document.querySelector('meta[name="sluice-token"]').content;
const $ = (id) => document.getElementById(id);

const view = {
  run: 0,          // the run the drawing is of
  graph: null,     // /api/graph
  nodes: [],       // per node: {g, rect, counts, state}
  edges: [],       // per edge: {g, label, count, rate, lastCount}
  lastElapsed: 0,  // ms, of the previous snapshot
  scale: 1,
  status: "connecting",
  endsWithRun: false,
  failures: {},
  drawing: 0,      // the draw in progress (a newer one stops an older one)
  slowestUpdateMs: 0, // the longest applyProgress so far (the browser test reads it)
  source: null,    // the EventSource
  loading: null,   // the graph fetch in flight
};
// For tests and other scripts: what the page shows now.
window.sluiceView = view;

const numbers = new Intl.NumberFormat("en-US", { maximumFractionDigits: 0 });
function fmt(n) {
  return numbers.format(n);
}
function rate(n) {
  if (n >= 1e6) return (n / 1e6).toFixed(1) + "M/s";
  if (n >= 1e3) return (n / 1e3).toFixed(1) + "k/s";
  return Math.round(n) + "/s";
}
function mib(b) {
  if (b >= 1 << 30) return (b / (1 << 30)).toFixed(1) + " GiB";
  return Math.round(b / (1 << 20)) + " MiB";
}
function el(name, attrs, parent) {
  const e = document.createElementNS(SVG, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (parent) parent.appendChild(e);
  return e;
}
function setText(node, text) {
  if (node.textContent !== text) node.textContent = text;
}

// ---- drawing ---------------------------------------------------------------------------

function draw(graph) {
  view.graph = graph;
  const svg = $("graph");
  svg.replaceChildren();
  svg.setAttribute("viewBox", `0 0 ${graph.width} ${graph.height}`);
  $("title").textContent = graph.name ? `sluice — ${graph.name}` : "sluice";
  for (const g of graph.groups) {
    const box = el("g", { class: "group" }, svg);
    el("rect", { x: g.x, y: g.y, width: g.width, height: g.height }, box);
    el("text", { x: g.x + 8, y: g.y + 13 }, box).textContent = g.id;
  }
  const edgeLayer = el("g", {}, svg);
  const nodeLayer = el("g", {}, svg);
  view.edges = graph.edges.map((e, i) => {
    const a = graph.nodes[e.from], b = graph.nodes[e.to];
    const x1 = a.x + a.width, y1 = a.y + a.height / 2, x2 = b.x, y2 = b.y + b.height / 2;
    let d, lx, ly;
    if (x2 > x1) {
      const dx = Math.max(30, (x2 - x1) / 2);
      d = `M${x1},${y1} C${x1 + dx},${y1} ${x2 - dx},${y2} ${x2},${y2}`;
      lx = (x1 + x2) / 2;
      ly = (y1 + y2) / 2 - 5;
    } else {
      // Onto the next band: out to the right, back along the gap above the target, in.
      const gap = b.y - 22;
      d = `M${x1},${y1} C${x1 + 60},${y1} ${x1 + 60},${gap} ${x1},${gap} L${x2},${gap} C${x2 - 60},${gap} ${x2 - 60},${y2} ${x2},${y2}`;
      lx = (x1 + x2) / 2;
      ly = gap - 4;
    }
    const g = el("g", { class: "edge" + (e.captured ? " captured" : ""), "data-edge": e.name, "data-index": i });
    el("path", { class: "line", d }, g);
    el("path", { class: "hit", d }, g);
    const label = el("text", { x: lx, y: ly, "text-anchor": "middle", "data-count": 0 }, g);
    label.textContent = "0";
    const title = el("title", {}, g);
    title.textContent = `${e.name}${e.captured ? " (captured: click to preview)" : ""}`;
    g.addEventListener("click", () => preview(i));
    return { g, label, count: 0, rate: 0, lastCount: 0 };
  });
  view.nodes = graph.nodes.map((n, i) => {
    const g = el("g", { class: "node waiting", "data-node": n.id, "data-state": "waiting", transform: `translate(${n.x},${n.y})` });
    el("rect", { width: n.width, height: n.height }, g);
    const short = n.group ? n.id.slice(n.group.length + 1) : n.id;
    el("text", { x: 8, y: 17 }, g).textContent = short.length > 20 ? short.slice(0, 19) + "…" : short;
    const sub = el("text", { x: 8, y: 33, class: "action" }, g);
    sub.textContent = n.action;
    const title = el("title", {}, g);
    title.textContent = `${n.id} (${n.action})`;
    // The tooltip is written when the pointer comes, not at every update.
    g.addEventListener("mouseenter", () => {
      const v = view.nodes[i];
      const spill = v.spilled ? ` · spilled ${mib(v.spilled)}` : "";
      title.textContent = `${n.id} (${n.action}): ${v.state}, in ${fmt(v.inCount)}, out ${fmt(v.outCount)}${spill}`;
    });
    g.addEventListener("click", () => showNode(i));
    return { g, sub, state: "waiting", shownState: "waiting", inCount: 0, outCount: 0, spilled: 0 };
  });
  view.lastElapsed = 0;
  fit();
  // Into the page a slice per frame, so a large workflow never blocks the page for long
  // (updates meanwhile go to the elements not yet shown).
  const drawn = ++view.drawing;
  const SLICE = 40;
  let at = 0;
  const step = () => {
    if (drawn !== view.drawing) return;
    const edges = document.createDocumentFragment(), nodes = document.createDocumentFragment();
    for (let i = at; i < at + SLICE && i < view.edges.length; i++) edges.appendChild(view.edges[i].g);
    for (let i = at; i < at + SLICE && i < view.nodes.length; i++) nodes.appendChild(view.nodes[i].g);
    edgeLayer.appendChild(edges);
    nodeLayer.appendChild(nodes);
    at += SLICE;
    if (at < Math.max(view.edges.length, view.nodes.length)) requestAnimationFrame(step);
  };
  step();
}

function applyScale() {
  const g = view.graph;
  if (!g) return;
  const svg = $("graph");
  svg.setAttribute("width", Math.round(g.width * view.scale));
  svg.setAttribute("height", Math.round(g.height * view.scale));
}
function fit() {
  const g = view.graph;
  if (!g) return;
  const box = $("canvas").getBoundingClientRect();
  view.scale = Math.max(0.15, Math.min(1.5, (box.width - 8) / g.width, (box.height - 8) / g.height));
  applyScale();
}

// ---- state -----------------------------------------------------------------------------

// Snapshots arrive about ten a second; the page draws at most four a second (the latest),
// and none while it is hidden: a browser watching a run takes as little as it can from it.
const DRAW_EVERY_MS = 250;
let pending = null, timer = null;
function later(p) {
  pending = p;
  if (timer === null) {
    timer = setTimeout(() => {
      timer = null;
      if (document.hidden) return;
      const q = pending;
      pending = null;
      applyProgress(q);
    }, DRAW_EVERY_MS);
  }
}
document.addEventListener("visibilitychange", () => {
  if (!document.hidden && pending) later(pending);
});

function applyProgress(p) {
  if (!p || !view.graph || p.nodes.length !== view.nodes.length) return;
  const t0 = performance.now();
  drawProgress(p);
  view.slowestUpdateMs = Math.max(view.slowestUpdateMs, performance.now() - t0);
}

function drawProgress(p) {
  const dt = (p.elapsed_ms - view.lastElapsed) / 1000;
  for (let i = 0; i < p.nodes.length; i++) {
    const s = p.nodes[i], n = view.nodes[i];
    const state = view.failures[s.id] !== undefined ? "failed" : s.state;
    if (n.state !== state) {
      n.g.setAttribute("class", "node " + state);
      n.g.setAttribute("data-state", state);
      n.state = state;
    }
    let out = 0;
    for (const port of s.features_out) out += port.features;
    n.inCount = s.features_in;
    n.outCount = out;
    n.spilled = s.spilled_bytes;
    if (n.shownState !== state) {
      n.shownState = state;
      n.sub.textContent = view.graph.nodes[i].action + (state === "waiting" || state === "done" ? "" : " · " + state);
    }
  }
  let sourceRate = 0;
  for (let i = 0; i < p.edges.length && i < view.edges.length; i++) {
    const c = p.edges[i].features, e = view.edges[i];
    if (dt > 0.05) {
      const r = Math.max(0, (c - e.lastCount) / dt);
      e.rate = e.rate ? 0.6 * r + 0.4 * e.rate : r;
      e.lastCount = c;
    }
    if (view.graph.nodes[view.graph.edges[i].from].kind === "source") sourceRate += e.rate;
    if (e.count !== c) {
      e.count = c;
      e.label.setAttribute("data-count", c);
    }
    const running = view.status === "running" && e.rate >= 0.5;
    setText(e.label, fmt(c) + (running ? " · " + rate(e.rate) : ""));
  }
  if (dt > 0.05) view.lastElapsed = p.elapsed_ms;
  setText($("elapsed"), (p.elapsed_ms / 1000).toFixed(1) + " s");
  setText($("throughput"), view.status === "running" && sourceRate > 0 ? "read " + rate(sourceRate) : "");
  const m = p.memory, gauge = $("memory");
  const pct = (b) => Math.min(100, (100 * b) / Math.max(1, m.limit)).toFixed(1) + "%";
  gauge.querySelector(".rss").style.width = pct(m.rss);
  gauge.querySelector(".reserved").style.width = pct(m.reserved);
  gauge.classList.toggle("over", m.rss > m.limit);
  setText(gauge.querySelector(".label"), `RSS ${mib(m.rss)} · reserved ${mib(m.reserved)} / ${mib(m.limit)}`);
}

function applyState(s) {
  // The state carries the newest snapshot: an older one waiting to be drawn is dropped.
  pending = null;
  view.status = s.status;
  view.endsWithRun = s.server_ends_with_run;
  view.failures = s.failures || {};
  const status = $("status");
  status.dataset.status = s.status;
  status.dataset.run = s.run;
  const words = { idle: "idle", invalid: "invalid workflow", running: "running", succeeded: "done", failed: "failed", cancelled: "cancelled" };
  status.textContent = (words[s.status] || s.status) + (s.run > 1 ? ` (run ${s.run})` : "");
  status.title = s.error || "";
  $("cancel").disabled = s.status !== "running";
  $("again").disabled = s.status === "running" || s.server_ends_with_run;
  if (s.status === "invalid") {
    showDiagnostics(s.validation);
    view.run = s.run;
    return;
  }
  $("diagnostics").hidden = true;
  $("canvas").hidden = false;
  if (s.run !== view.run || !view.graph) {
    view.run = s.run;
    loadGraph().then(() => applyProgress(s.progress));
  } else {
    applyProgress(s.progress);
  }
  if (s.error) log(s.error);
  if (s.status !== "running" && s.server_ends_with_run && view.source) {
    // This server ends with its run: nothing more will come.
    view.source.close();
    view.source = null;
    log("the run is over and its server has stopped");
  }
}

function loadGraph() {
  if (view.loading) return view.loading;
  view.loading = fetch("/api/graph")
    .then(async (r) => {
      const body = await r.json();
      if (r.ok) draw(body);
      else if (body.validation) showDiagnostics(body.validation);
    })
    .finally(() => { view.loading = null; });
  return view.loading;
}

function showDiagnostics(v) {
  const box = $("diagnostics");
  box.replaceChildren();
  $("canvas").hidden = true;
  box.hidden = false;
  const h = document.createElement("h2");
  h.textContent = v ? `${v.file}: ${v.errors} error(s)` : "the workflow is invalid";
  box.appendChild(h);
  const list = document.createElement("ul");
  for (const d of (v && v.diagnostics) || []) {
    const li = document.createElement("li");
    const where = document.createElement("span");
    where.className = "where";
    const loc = [d.file, d.line, d.column].filter((x) => x !== null && x !== undefined).join(":");
    const at = [d.node ? `node "${d.node}"` : "", d.param ? `parameter "${d.param}"` : ""].filter(Boolean).join(", ");
    where.textContent = `${loc}${at ? ": " + at : ""}: `;
    li.appendChild(where);
    li.appendChild(document.createTextNode(`${d.severity}: ${d.message}${d.help ? "\n  help: " + d.help : ""}`));
    li.dataset.severity = d.severity;
    list.appendChild(li);
  }
  box.appendChild(list);
}

function log(text) {
  setText($("log"), text);
}

// ---- panel: a node's details, an edge's preview -----------------------------------------

function openPanel(title) {
  const body = $("panel-body");
  body.replaceChildren();
  const h = document.createElement("h2");
  h.textContent = title;
  body.appendChild(h);
  $("panel").hidden = false;
  return body;
}

function showNode(i) {
  const n = view.graph.nodes[i], v = view.nodes[i];
  const body = openPanel(n.id);
  const p = document.createElement("p");
  p.textContent = `${n.action} (${n.kind}): ${v.state}; features in ${fmt(v.inCount)}, out ${fmt(v.outCount)}`;
  body.appendChild(p);
  const err = view.failures[n.id];
  if (err !== undefined) {
    const pre = document.createElement("pre");
    pre.className = "error";
    pre.textContent = err;
    body.appendChild(pre);
  }
}

async function preview(i) {
  const e = view.graph.edges[i];
  const body = openPanel(e.name);
  const note = document.createElement("p");
  note.textContent = "loading…";
  body.appendChild(note);
  const r = await fetch(`/api/preview/${i}?limit=50`);
  const data = await r.json();
  if (!r.ok) {
    note.textContent = data.error;
    return;
  }
  note.textContent = `the first ${data.rows.length} of ${fmt(data.features)} feature(s)${data.complete ? "" : " (capture still going on)"}`;
  const table = document.createElement("table");
  const head = table.createTHead().insertRow();
  for (const c of data.columns) {
    const th = document.createElement("th");
    th.textContent = c;
    head.appendChild(th);
  }
  const tbody = table.createTBody();
  for (const row of data.rows) {
    const tr = tbody.insertRow();
    for (const cell of row) tr.insertCell().textContent = cell;
  }
  body.appendChild(table);
}

// ---- talking to the server -------------------------------------------------------------

async function post(path) {
  const r = await fetch(path, { method: "POST", headers: { "x-sluice-token": token } });
  const body = await r.json().catch(() => ({}));
  if (!r.ok) {
    log(body.error || `${path}: ${r.status}`);
    if (body.validation) showDiagnostics(body.validation);
  }
  return r.ok;
}

function listen() {
  const source = new EventSource("/api/events");
  view.source = source;
  const whole = (m) => applyState(JSON.parse(m.data));
  source.addEventListener("snapshot", whole);
  source.addEventListener("run_started", whole);
  source.addEventListener("run_finished", whole);
  source.addEventListener("progress", (m) => later(JSON.parse(m.data)));
  source.addEventListener("node_failed", (m) => {
    const f = JSON.parse(m.data);
    view.failures[f.node] = f.error;
    const i = view.graph ? view.graph.nodes.findIndex((n) => n.id === f.node) : -1;
    if (i >= 0) {
      view.nodes[i].g.setAttribute("class", "node failed");
      view.nodes[i].g.setAttribute("data-state", "failed");
      view.nodes[i].state = "failed";
    }
    log(`${f.node}: ${f.error}`);
  });
  source.addEventListener("log", (m) => {
    const l = JSON.parse(m.data);
    log(l.node ? `[${l.node}] ${l.message}` : l.message);
  });
  // EventSource reconnects by itself; the server then sends the whole state first.
  source.onerror = () => {
    if (view.source === source && source.readyState !== EventSource.CLOSED) {
      $("status").textContent = "reconnecting…";
    }
  };
}

$("cancel").addEventListener("click", () => post("/api/cancel"));
$("again").addEventListener("click", () => post("/api/run"));
$("fit").addEventListener("click", fit);
$("zoom-in").addEventListener("click", () => { view.scale = Math.min(3, view.scale * 1.25); applyScale(); });
$("zoom-out").addEventListener("click", () => { view.scale = Math.max(0.05, view.scale / 1.25); applyScale(); });
$("close-panel").addEventListener("click", () => { $("panel").hidden = true; });
listen();
