// Starts yaml-language-server over stdio, gives it sluice's workflow schema the way an
// editor does (the `yaml.schemas` setting), opens a broken workflow and checks the
// diagnostics the server publishes for it.
//
//   node check.mjs SERVER_JS SCHEMA_JSON WORKFLOW_YAML EXPECTED_JSON
//
// EXPECTED_JSON says what must be reported: { "diagnostics": [{ "line": 1-based,
// "contains": "text" }], "only_these_lines": bool }. Every expected entry must match a
// diagnostic on that line whose message contains the text (case-insensitive); with
// only_these_lines, a diagnostic on any other line fails the check. Exits 0 when all match, 1 otherwise (printing what the server
// said), 2 when the server does not answer within the time limit; the server is killed in
// every case.

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [serverJs, schemaPath, workflowPath, expectedPath] = process.argv.slice(2);
const LIMIT_MS = Number(process.env.LSP_TIMEOUT_MS || 30000);
// After the first non-empty diagnostics, wait this long for a later, fuller set.
const SETTLE_MS = 1500;

const schemaUri = pathToFileURL(resolve(schemaPath)).href;
const docUri = pathToFileURL(resolve(workflowPath)).href;
const text = readFileSync(workflowPath, "utf8");
const spec = JSON.parse(readFileSync(expectedPath, "utf8"));
const expected = spec.diagnostics;
const lines = new Set(expected.map((e) => e.line));
const settings = {
  yaml: {
    validate: true,
    hover: false,
    completion: false,
    schemaStore: { enable: false },
    schemas: { [schemaUri]: [docUri, "*.sluice.yaml"] },
  },
};

const server = spawn(process.execPath, [serverJs, "--stdio"], {
  stdio: ["pipe", "pipe", "pipe"],
});
let stderrText = "";
server.stderr.on("data", (d) => (stderrText += d));

function finish(code, message) {
  if (message) console.log(message);
  server.kill("SIGKILL");
  process.exit(code);
}

const timer = setTimeout(() => {
  finish(2, `lsp: no diagnostics within ${LIMIT_MS} ms\n${stderrText.slice(-2000)}`);
}, LIMIT_MS);
timer.unref?.();
server.on("exit", (code, signal) => {
  if (!done) finish(2, `lsp: the server exited early (${code ?? signal})\n${stderrText.slice(-2000)}`);
});

function send(msg) {
  const body = Buffer.from(JSON.stringify({ jsonrpc: "2.0", ...msg }), "utf8");
  server.stdin.write(`Content-Length: ${body.length}\r\n\r\n`);
  server.stdin.write(body);
}

let nextId = 1;
function request(method, params) {
  send({ id: nextId++, method, params });
}
function notify(method, params) {
  send({ method, params });
}

// ---- reading framed messages -------------------------------------------------------
let buffer = Buffer.alloc(0);
server.stdout.on("data", (chunk) => {
  buffer = Buffer.concat([buffer, chunk]);
  for (;;) {
    const headerEnd = buffer.indexOf("\r\n\r\n");
    if (headerEnd < 0) return;
    const header = buffer.slice(0, headerEnd).toString("ascii");
    const m = /Content-Length: *(\d+)/i.exec(header);
    if (!m) return finish(1, `lsp: a message without Content-Length: ${header}`);
    const len = Number(m[1]);
    if (buffer.length < headerEnd + 4 + len) return;
    const body = buffer.slice(headerEnd + 4, headerEnd + 4 + len).toString("utf8");
    buffer = buffer.slice(headerEnd + 4 + len);
    onMessage(JSON.parse(body));
  }
});

let done = false;
let latest = null;
let settle = null;

function onMessage(msg) {
  // Requests from the server: answer them so it does not wait.
  if (msg.id !== undefined && msg.method) {
    let result = null;
    if (msg.method === "workspace/configuration") {
      result = (msg.params?.items || []).map((it) => {
        const section = it.section || "";
        return section.split(".").filter(Boolean).reduce((o, k) => (o ? o[k] : undefined), settings) ?? null;
      });
    }
    send({ id: msg.id, result });
    return;
  }
  if (msg.id === 1 && msg.result) {
    // initialize answered
    notify("initialized", {});
    notify("workspace/didChangeConfiguration", { settings });
    notify("textDocument/didOpen", {
      textDocument: { uri: docUri, languageId: "yaml", version: 1, text },
    });
    return;
  }
  if (msg.method === "textDocument/publishDiagnostics" && msg.params.uri === docUri) {
    if (msg.params.diagnostics.length === 0) return;
    latest = msg.params.diagnostics;
    // Diagnostics may come in more than one publication: wait a little for a later one.
    clearTimeout(settle);
    settle = setTimeout(() => report(latest), allMatched(latest) ? 200 : SETTLE_MS);
  }
}

function allMatched(diags) {
  return expected.every((e) => matches(e, diags));
}

function matches(e, diags) {
  return diags.some(
    (d) =>
      d.range.start.line + 1 === e.line &&
      d.message.toLowerCase().includes(e.contains.toLowerCase()),
  );
}

function report(diags) {
  done = true;
  clearTimeout(timer);
  clearTimeout(settle);
  const said = diags
    .map((d) => `  ${d.range.start.line + 1}:${d.range.start.character + 1} ${d.message.replace(/\s+/g, " ")}`)
    .join("\n");
  const missing = expected.filter((e) => !matches(e, diags));
  const others = spec.only_these_lines
    ? diags.filter((d) => !lines.has(d.range.start.line + 1))
    : [];
  if (missing.length === 0 && others.length === 0) {
    finish(0, `lsp: the server reported every expected problem and no other:\n${said}`);
  }
  const want = missing.map((e) => `  line ${e.line}: "${e.contains}"`).join("\n");
  const extra = others.map((d) => `  line ${d.range.start.line + 1}: ${d.message}`).join("\n");
  finish(1, `lsp: missing diagnostics:\n${want || "  (none)"}\nunexpected ones:\n${extra || "  (none)"}\nthe server said:\n${said}`);
}

request("initialize", {
  processId: process.pid,
  rootUri: pathToFileURL(resolve(".")).href,
  capabilities: {
    workspace: { configuration: true, didChangeConfiguration: { dynamicRegistration: false } },
    textDocument: { publishDiagnostics: { relatedInformation: false } },
  },
  initializationOptions: {},
});
