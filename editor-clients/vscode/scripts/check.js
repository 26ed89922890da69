// `npm test`: checks of the compiled extension that need no VS Code.
//
// 1. package.json: activation events, contributed settings and their defaults agree with the code;
//    every `hone.*` setting but the client-only ones is forwarded to the server.
// 2. The compiled module activates against a stubbed `vscode` API and a recording stand-in for
//    vscode-languageclient's LanguageClient (the real one's types are checked by `tsc`):
//    server command line, initializationOptions, didChangeConfiguration, restart on launch
//    settings.
// 3. Contract with the real server: the exact command and options the extension produced are
//    used to start `hone serve` with a scripted model, over stdio with the LSP library that
//    vscode-languageclient itself uses; the server must advertise inline completion, accept the
//    options without a warning, and answer an inline completion request. Skipped (with a
//    message) when no `hone` executable is found; set HONE_COMMAND to point at one.
// 4. The real vscode-languageclient against an in-memory `vscode` (scripts/vscode-fake.js) and
//    the real server: inline completions.
// 5. Fix a failing test / localize: the manifest (commands, settings, untrusted workspaces),
//    runCode following workspace trust, the command UI against scripted server answers, and the
//    whole flow (code lens, diff, modal Apply/Cancel, workspace/applyEdit, quick pick) with the
//    real client and server on a tiny repository in a temporary folder.
// 6. Attaching to a running `hone serve --tcp` (hone.tcp): the settings are client-only and
//    restricted in untrusted workspaces; serverOptions connects and the token reaches the server
//    only inside the initialize request (not initializationOptions, didChangeConfiguration, the
//    log); where the token is looked for; bad addresses, nothing listening, TLS with a
//    self-signed certificate (stand-in listeners); with the real client: the server's refusal
//    shown once even when the close overtakes it, a lost connection not retried; and against
//    the real `hone serve --tcp` with HONE_TOKEN: a wrong token is refused once and shown, the
//    right one (from an owner-only token file) gets an inline completion, a second client is
//    turned away, and the client's disconnect stops the server. The token is in no output.
"use strict";
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const cp = require("node:child_process");
const crypto = require("node:crypto");
const net = require("node:net");
const Module = require("node:module");
const { test, after } = require("node:test");

const ROOT = path.resolve(__dirname, "..");
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
const props = pkg.contributes.configuration.properties;

const { loadExtension, fireConfigChange, grantTrust, context } = require("./stubs");

// ---------------------------------------------------------------- 1. package.json
test("package.json contributes the settings, with the documented types and defaults", () => {
  const expected = {
    "hone.command": ["string", "hone"],
    "hone.args": ["array", ["serve"]],
    "hone.model": ["string", ""],
    "hone.maxNewTokensMulti": ["integer", undefined],
    "hone.multiline": ["boolean", true],
    "hone.debounceMs": ["integer", undefined],
  };
  for (const [key, [type, dflt]] of Object.entries(expected)) {
    assert.ok(props[key], `missing setting ${key}`);
    assert.equal(props[key].type, type, `${key} type`);
    if (dflt !== undefined) assert.deepEqual(props[key].default, dflt, `${key} default`);
    assert.ok(props[key].description, `${key} needs a description`);
  }
  assert.ok(fs.existsSync(path.join(ROOT, pkg.main)), `${pkg.main} missing: run npm run compile`);
  for (const id of ["hone.restart", "hone.showOutput"]) {
    assert.ok(pkg.contributes.commands.some((c) => c.command === id), `command ${id} not contributed`);
  }
});

test("activation events cover exactly the languages the client serves", () => {
  const { extension } = loadExtension({});
  const activation = pkg.activationEvents.filter((e) => e.startsWith("onLanguage:"));
  assert.deepEqual(activation.map((e) => e.slice("onLanguage:".length)).sort(), [...extension.LANGUAGES].sort());
  assert.ok(extension.LANGUAGES.includes("python"));
});

test("every hone.* setting but the client-only ones is a server option, forwarded by name", () => {
  const { extension, vscode } = loadExtension({});
  const forwarded = Object.keys(extension.readServerSettings(vscode.workspace.getConfiguration("hone")));
  const contributed = Object.keys(props).map((key) => key.slice("hone.".length));
  // ... and runCode, which is no setting: workspace trust decides it.
  assert.equal(extension.TRUST_OPTION, "runCode");
  assert.deepEqual(
    [...forwarded].sort(),
    [...contributed.filter((k) => !extension.CLIENT_ONLY.includes(k)), "runCode"].sort(),
  );
  assert.deepEqual([...extension.CLIENT_ONLY].sort(), ["args", "command", "model", "tcp", "tls", "tlsCaFile", "tokenFile", "trace.server"]);
  for (const name of ["maxNewTokensMulti", "maxLines", "retrievalTokens", "contextTokens", "enable"]) {
    assert.ok(forwarded.includes(name), `${name} is not forwarded`);
  }
});

test("the code's fallback defaults equal package.json's defaults", () => {
  const { extension, vscode } = loadExtension({});
  const config = vscode.workspace.getConfiguration("hone");
  const { runCode, ...fromCode } = extension.readServerSettings(config);
  assert.equal(runCode, false, "an untrusted workspace must not let the server run code");
  const fromPackage = {};
  for (const key of Object.keys(fromCode)) fromPackage[key] = props[`hone.${key}`].default;
  assert.deepEqual(fromCode, fromPackage);
  assert.deepEqual(extension.readLaunch(config), { command: props["hone.command"].default, args: props["hone.args"].default });
});

// ---------------------------------------------------------------- 2. behaviour
test("activate starts `hone serve` over stdio with the settings as initializationOptions", async () => {
  const { extension, vscode, client } = loadExtension({ maxNewTokensMulti: 48, maxLines: 5, debounceMs: 10 });
  await extension.activate(context());
  assert.equal(client.instances.length, 1);
  const c = client.instances[0];
  assert.equal(c.id, "hone");
  // No transport: TransportKind.stdio would make the client append `--stdio` to the arguments.
  assert.deepEqual(c.serverOptions, { command: "hone", args: ["serve"] });
  const init = typeof c.clientOptions.initializationOptions === "function"
    ? c.clientOptions.initializationOptions()
    : c.clientOptions.initializationOptions;
  assert.deepEqual(init, {
    ...extension.SERVER_OPTION_DEFAULTS,
    maxNewTokensMulti: 48,
    maxLines: 5,
    debounceMs: 10,
    runCode: false,
  });
  assert.equal(init.multiline, true);
  const languages = new Set(c.clientOptions.documentSelector.map((s) => s.language));
  assert.deepEqual([...languages].sort(), [...extension.LANGUAGES].sort());
  assert.ok(c.running);
  assert.deepEqual(Object.keys(vscode.calls.commands).sort(), ["hone.restart", "hone.showOutput"]);
  await extension.deactivate();
  assert.equal(c.running, false);
});

test("hone.model becomes --model, and a custom command/args are used as given", async () => {
  const { extension, client } = loadExtension({
    command: "/opt/hone/bin/hone",
    args: ["serve", "-v"],
    model: " /models/my-coder ",
  });
  await extension.activate(context());
  assert.deepEqual(client.instances[0].serverOptions.command, "/opt/hone/bin/hone");
  assert.deepEqual(client.instances[0].serverOptions.args, ["serve", "-v", "--model", "/models/my-coder"]);
  await extension.deactivate();
});

test("changing a server option sends didChangeConfiguration; a launch setting restarts", async () => {
  const settings = {};
  const { extension, vscode, client } = loadExtension(settings);
  await extension.activate(context());
  const first = client.instances[0];

  settings.multiline = false;
  await fireConfigChange(vscode, "hone.multiline");
  assert.equal(client.instances.length, 1, "no restart for a server option");
  assert.deepEqual(first.notifications, [
    {
      method: "workspace/didChangeConfiguration",
      params: { settings: { hone: { ...extension.SERVER_OPTION_DEFAULTS, multiline: false, runCode: false } } },
    },
  ]);

  await fireConfigChange(vscode, "editor.fontSize");
  assert.equal(first.notifications.length, 1, "unrelated settings are ignored");

  settings.model = "scripted:/tmp/x.json";
  await fireConfigChange(vscode, "hone.model");
  assert.equal(client.instances.length, 2, "a new client after hone.model changed");
  assert.equal(first.running, false, "the old client was stopped");
  assert.deepEqual(client.instances[1].serverOptions.args, ["serve", "--model", "scripted:/tmp/x.json"]);
  await extension.deactivate();
});

// ---------------------------------------------------------------- 3. the real server
function findHone() {
  if (process.env.HONE_COMMAND) return process.env.HONE_COMMAND;
  const venv = path.resolve(ROOT, "..", "..", ".venv", "bin", "hone");
  return fs.existsSync(venv) ? venv : null;
}

test("the real `hone serve` accepts what the extension sends and completes inline", { timeout: 120_000 }, async (t) => {
  const hone = findHone();
  if (!hone) {
    t.skip("no hone executable (set HONE_COMMAND or create ../../.venv)");
    return;
  }
  const lsp = require("vscode-languageserver-protocol/node");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hone-vscode-check-"));
  const script = path.join(tmp, "scripted.json");
  fs.writeFileSync(script, JSON.stringify({ responses: [{ match: null, text: "return a + b\n" }], step_ms: 5 }));

  const settings = { command: hone, model: `scripted:${script}`, maxNewTokensMulti: 32, multiline: true, debounceMs: 0 };
  const { extension, vscode, client } = loadExtension(settings);
  await extension.activate(context());
  const c = client.instances[0];
  settings.maxNewTokensMulti = 40;
  await fireConfigChange(vscode, "hone.maxNewTokensMulti");
  const pushed = c.notifications[0].params;
  const initializationOptions = c.clientOptions.initializationOptions();

  const server = cp.spawn(c.serverOptions.command, c.serverOptions.args, { stdio: ["pipe", "pipe", "pipe"] });
  let stderr = "";
  server.stderr.on("data", (d) => { stderr += d; });
  const conn = lsp.createProtocolConnection(new lsp.StreamMessageReader(server.stdout), new lsp.StreamMessageWriter(server.stdin));
  const messages = [];
  conn.onNotification(lsp.ShowMessageNotification.type, (p) => messages.push(p.message));
  conn.onNotification(lsp.LogMessageNotification.type, () => {});
  conn.onRequest(lsp.ConfigurationRequest.type, (p) => p.items.map(() => null));
  conn.onRequest(lsp.WorkDoneProgressCreateRequest.type, () => null);
  conn.onRequest(lsp.RegistrationRequest.type, () => null);
  conn.listen();
  // Fail (instead of hanging) when the server dies or stalls.
  let timer;
  const died = new Promise((_, reject) => {
    server.on("exit", (code, signal) => reject(new Error(`hone serve exited early (code ${code}, signal ${signal})`)));
    server.on("error", reject);
    timer = setTimeout(() => reject(new Error("hone serve did not answer within 60 s")), 60_000);
  });
  died.catch(() => {});
  const race = (promise) => Promise.race([promise, died]);
  t.after(() => {
    clearTimeout(timer);
    conn.dispose();
    server.kill("SIGKILL");
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  try {
    const init = await race(conn.sendRequest(lsp.InitializeRequest.type, {
      processId: process.pid,
      rootUri: null,
      capabilities: { textDocument: { inlineCompletion: { dynamicRegistration: true } } },
      initializationOptions,
    }));
    assert.ok(init.capabilities.inlineCompletionProvider, "server does not advertise inlineCompletionProvider");
    await conn.sendNotification(lsp.InitializedNotification.type, {});
    await conn.sendNotification(lsp.DidChangeConfigurationNotification.type, pushed);
    const uri = "file://" + path.join(tmp, "demo.py");
    await conn.sendNotification(lsp.DidOpenTextDocumentNotification.type, {
      textDocument: { uri, languageId: "python", version: 1, text: "def add(a, b):\n    \n" },
    });
    const answer = await race(conn.sendRequest(lsp.InlineCompletionRequest.type, {
      textDocument: { uri },
      position: { line: 1, character: 4 },
      context: { triggerKind: lsp.InlineCompletionTriggerKind.Automatic },
    }));
    const items = Array.isArray(answer) ? answer : answer.items;
    assert.ok(items.length > 0, "no inline completion items");
    const text = typeof items[0].insertText === "string" ? items[0].insertText : items[0].insertText.value;
    assert.equal(text.trimEnd(), "return a + b");
    assert.deepEqual(messages, [], "the server warned about the options the extension sent");
    await race(conn.sendRequest(lsp.ShutdownRequest.type));
    server.removeAllListeners("exit");
    await conn.sendNotification(lsp.ExitNotification.type);
  } catch (error) {
    error.message += `\n--- server stderr ---\n${stderr.slice(-3000)}`;
    throw error;
  } finally {
    await extension.deactivate();
  }
});

// ---------------------------------------------------------------- 4. the real client library
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Load the extension and the real client library afresh against the fake `vscode`; activate. */
/** The one inline completion provider the extension registers once its client runs (30 s at
 * most); `explain()` says what happened when there is none. */
async function inlineProvider(fake, explain) {
  const deadline = Date.now() + 30_000;
  while (fake.record.inlineProviders.length === 0 && Date.now() < deadline) await sleep(20);
  assert.equal(fake.record.inlineProviders.length, 1, `no inline completion provider registered\n${explain()}`);
  return fake.record.inlineProviders[0];
}

async function activateWithRealClient(fake) {
  const main = require.resolve(path.join(ROOT, pkg.main));
  const out = path.dirname(main);
  for (const key of Object.keys(require.cache)) {
    if (path.dirname(key) === out || key.includes(`${path.sep}node_modules${path.sep}vscode-languageclient${path.sep}`)) {
      delete require.cache[key];
    }
  }
  const originalLoad = Module._load;
  Module._load = function (request, parent, isMain) {
    if (request === "vscode") return fake.vscode;
    return originalLoad.call(this, request, parent, isMain);
  };
  try {
    const extension = require(main);
    await extension.activate(context());
    return extension;
  } finally {
    Module._load = originalLoad;
  }
}

/** What the fake window showed and the output channels logged, for assertion messages. */
function fakeOutput(fake) {
  return [
    ...fake.record.shown.map((s) => `${s.level}: ${s.message}`),
    ...fake.record.modals.map((s) => `modal ${s.level}: ${s.message} -> ${s.answer}`),
    ...fake.record.channels.map((c) => `--- output channel ${c.name} ---\n${c.lines.join("\n").slice(-3000)}`),
  ].join("\n");
}

test("the real vscode-languageclient turns hone's answers into a VS Code inline completion provider", { timeout: 120_000 }, async (t) => {
  const hone = findHone();
  if (!hone) {
    t.skip("no hone executable (set HONE_COMMAND or create ../../.venv)");
    return;
  }
  const { createVscode, makeDocument, Position, Uri, CancellationTokenSource } = require("./vscode-fake");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hone-vscode-client-"));
  const script = path.join(tmp, "scripted.json");
  fs.writeFileSync(script, JSON.stringify({ responses: [{ match: null, text: "return a + b\n" }], step_ms: 5 }));
  const settings = { command: hone, args: ["serve"], model: `scripted:${script}` };
  const fake = createVscode(settings);
  const extension = await activateWithRealClient(fake);
  t.after(async () => {
    await extension.deactivate().catch(() => {});
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const output = () => fakeOutput(fake);

  const { selector, provider } = await inlineProvider(fake, output);

  const doc = makeDocument(Uri.file(path.join(tmp, "demo.py")), "python", "def add(a, b):\n    \n");
  assert.ok(fake.vscode.languages.match(selector, doc) > 0, "the provider's selector does not cover Python files");
  fake.openDocument(doc);
  const answer = await provider.provideInlineCompletionItems(
    doc,
    new Position(1, 4),
    { triggerKind: fake.vscode.InlineCompletionTriggerKind.Automatic, selectedCompletionInfo: undefined },
    new CancellationTokenSource().token,
  );
  const items = Array.isArray(answer) ? answer : answer.items;
  assert.ok(items.length > 0, `no items\n${output()}`);
  assert.ok(items[0] instanceof fake.vscode.InlineCompletionItem);
  assert.equal(String(items[0].insertText).trimEnd(), "return a + b");

  // A settings change goes to the running server, which must understand it.
  settings.multiline = false;
  settings.maxNewTokensMulti = 48;
  fake.changeConfiguration("hone.multiline", "hone.maxNewTokensMulti");
  await sleep(300);
  assert.deepEqual(fake.record.shown, [], "the server or the client complained");
});

// ---------------------------------------------------------------- 5. fix a failing test, localize
const SERVER_COMMANDS = ["hone.fixFailingTest", "hone.applyFix", "hone.localize"];

test("manifest: repair commands and settings, untrusted workspaces limited, runCode no setting", () => {
  const titles = Object.fromEntries(pkg.contributes.commands.map((c) => [c.command, c.title]));
  assert.equal(titles["hone.fixFailingTest"], "hone: Fix failing test");
  assert.equal(titles["hone.localize"], "hone: Localize failing test");
  assert.equal(titles["hone.applyFix"], undefined, "hone.applyFix is no palette command (it needs a fix id)");
  for (const id of ["hone.fixFailingTest", "hone.localize"]) {
    const entry = pkg.contributes.menus.commandPalette.find((m) => m.command === id);
    assert.ok(entry && /isWorkspaceTrusted/.test(entry.when) && /editorLangId == python/.test(entry.when), `${id} palette when`);
  }
  const untrusted = pkg.capabilities.untrustedWorkspaces;
  assert.equal(untrusted.supported, "limited");
  assert.match(untrusted.description, /trusted/);
  for (const key of ["hone.command", "hone.args", "hone.python", "hone.trustRemoteCode"]) {
    assert.ok(untrusted.restrictedConfigurations.includes(key), `${key} must not come from an untrusted workspace`);
  }
  assert.equal(props["hone.runCode"], undefined, "runCode follows workspace trust; it must not be a setting");
  const expected = {
    "hone.repairBudgetSeconds": { type: "integer", default: 120, minimum: 10, maximum: 3600 },
    "hone.repairModel": { type: "boolean", default: true },
    "hone.python": { type: "string", default: "" },
  };
  for (const [key, spec] of Object.entries(expected)) {
    assert.ok(props[key], `missing setting ${key}`);
    for (const [field, value] of Object.entries(spec)) assert.equal(props[key][field], value, `${key}.${field}`);
    assert.ok(props[key].description, `${key} needs a description`);
  }
});

test("the extension registers none of the server's command ids (the client does)", () => {
  const sources = fs.readdirSync(path.join(ROOT, "src")).map((f) => fs.readFileSync(path.join(ROOT, "src", f), "utf8"));
  const registered = sources.flatMap((text) => [...text.matchAll(/registerCommand\(\s*([^,)]+)/g)].map((m) => m[1].trim()));
  assert.deepEqual(registered.sort(), ['"hone.restart"', '"hone.showOutput"'].sort());
  const { extension } = loadExtension({});
  void extension;
  const repair = require(path.join(ROOT, "out", "repair.js"));
  assert.deepEqual([...repair.SERVER_COMMANDS].sort(), [...SERVER_COMMANDS].sort());
});

test("runCode follows workspace trust: initializationOptions, then didChangeConfiguration on grant", async () => {
  for (const trusted of [false, true]) {
    const { extension, client } = loadExtension({}, { trusted });
    await extension.activate(context());
    assert.equal(client.instances[0].clientOptions.initializationOptions().runCode, trusted, `trusted=${trusted}`);
    await extension.deactivate();
  }
  const { extension, vscode, client } = loadExtension({ repairModel: false }, { trusted: false });
  await extension.activate(context());
  const c = client.instances[0];
  assert.equal(vscode.calls.trustListeners.length, 1, "no onDidGrantWorkspaceTrust listener");
  await grantTrust(vscode);
  assert.deepEqual(c.notifications, [
    {
      method: "workspace/didChangeConfiguration",
      params: { settings: { hone: { ...extension.SERVER_OPTION_DEFAULTS, repairModel: false, runCode: true } } },
    },
  ]);
  // ... and later setting changes keep it.
  await fireConfigChange(vscode, "hone.repairBudgetSeconds");
  assert.equal(c.notifications[1].params.settings.hone.runCode, true);
  await extension.deactivate();
});

// The command UI against scripted server answers (the stand-in client of scripts/stubs.js).
const TEST_ID = "tests/test_ages.py::test_adult_at_18";
const AGES_URI = "file:///repo/pkg/ages.py";
const FIXED_TEXT = "def is_adult(age):\n    return age >= 18\n";
const FIX_ANSWER = {
  status: "fixed",
  test: TEST_ID,
  fixed: true,
  explanation: "is_adult: `age > 18` became `age >= 18`.",
  diff: "--- a/pkg/ages.py\n+++ b/pkg/ages.py\n@@ -1,2 +1,2 @@\n def is_adult(age):\n-    return age > 18\n+    return age >= 18\n",
  source: "template",
  fixId: "fix-1",
  applied: false,
  message: "Found a fix for tests/test_ages.py::test_adult_at_18 in pkg/ages.py.",
  candidates: [],
  localization: [],
  changes: [{ uri: AGES_URI, path: "pkg/ages.py", text: FIXED_TEXT }],
};

async function withCommands(options = {}) {
  const { extension, vscode, client } = loadExtension({}, { trusted: true, ...options });
  await extension.activate(context());
  const c = client.instances[0];
  const nexts = [];
  const run = (command, ...args) =>
    c.clientOptions.middleware.executeCommand(command, args, (name, a) => {
      nexts.push({ command: name, args: a });
      return "sent by the client";
    });
  return { extension, vscode, c, run, nexts };
}

test("fix: a code lens's {testId} → progress, diff, modal Apply → hone.applyFix", async () => {
  const { extension, vscode, c, run } = await withCommands();
  c.answers["hone.fixFailingTest"] = (argument, server) => {
    server.progress({ kind: "begin", title: `hone: fix ${TEST_ID}`, cancellable: true, percentage: 0 });
    server.progress({ kind: "report", message: "candidate 1 of 3: > to >=", percentage: 40 });
    server.progress({ kind: "end", message: "done" });
    return FIX_ANSWER;
  };
  c.answers["hone.applyFix"] = () => ({ applied: true, message: "Applied the fix to pkg/ages.py." });
  vscode.answers.modal = (message, options, items) => items[0];

  const result = await run("hone.fixFailingTest", { testId: TEST_ID });
  assert.deepEqual(c.requests.map((r) => r.params.command), ["hone.fixFailingTest", "hone.applyFix"]);
  const sent = c.requests[0].params;
  assert.deepEqual(sent.arguments, [{ testId: TEST_ID, confirm: "client" }]);
  assert.ok(sent.workDoneToken, "no work-done token: the progress would not be cancellable");
  // Progress: a cancellable notification fed by the server's $/progress.
  assert.equal(vscode.calls.progress.length, 1);
  const progress = vscode.calls.progress[0];
  assert.equal(progress.options.location, vscode.ProgressLocation.Notification);
  assert.equal(progress.options.cancellable, true);
  assert.equal(progress.options.title, "hone");
  assert.deepEqual(progress.reports.map((r) => r.message), [
    "fixing the failing test…",
    `fix ${TEST_ID}`,
    `fix ${TEST_ID}: candidate 1 of 3: > to >=`,
  ]);
  assert.deepEqual(progress.reports.map((r) => r.increment), [undefined, 0, 40]);
  assert.equal(c.progressHandlers.size, 0, "the progress listener was not disposed");
  // The change, side by side: the file against a read-only hone-fix: document with the new text.
  const diff = vscode.calls.executed.find((e) => e.id === "vscode.diff");
  assert.ok(diff, "no vscode.diff");
  const [left, right, title] = diff.args;
  assert.equal(left.toString(), AGES_URI);
  assert.equal(right.scheme, "hone-fix");
  assert.equal(vscode.calls.contentProviders["hone-fix"].provideTextDocumentContent(right), FIXED_TEXT);
  assert.match(title, /pkg\/ages\.py/);
  // The question: modal, the explanation as detail, one action.
  assert.equal(vscode.calls.modals.length, 1);
  const modal = vscode.calls.modals[0];
  assert.equal(modal.options.modal, true);
  assert.match(modal.message, /Found a fix/);
  assert.match(modal.options.detail, /age >= 18/);
  assert.deepEqual(modal.items, ["Apply"]);
  assert.deepEqual(c.requests[1].params.arguments, [{ fixId: "fix-1" }]);
  assert.deepEqual(vscode.calls.infos, ["hone: Applied the fix to pkg/ages.py."]);
  assert.equal(result.applied, true);
  assert.deepEqual(vscode.calls.errors, []);
  await extension.deactivate();
});

test("fix: Cancel in the modal applies nothing", async () => {
  const { extension, vscode, c, run } = await withCommands();
  c.answers["hone.fixFailingTest"] = () => FIX_ANSWER;
  c.answers["hone.applyFix"] = () => assert.fail("hone.applyFix after Cancel");
  vscode.answers.modal = () => undefined; // VS Code's own Cancel button, or Escape
  const result = await run("hone.fixFailingTest", { testId: TEST_ID });
  assert.equal(vscode.calls.modals.length, 1);
  assert.deepEqual(c.requests.map((r) => r.params.command), ["hone.fixFailingTest"]);
  assert.equal(result.applied, false);
  await extension.deactivate();
});

test("fix: from the palette, the active Python editor's cursor names the test", async () => {
  const { extension, vscode, c, run } = await withCommands();
  // (The server's messages may start with "hone: " already: said once.)
  c.answers["hone.fixFailingTest"] = () => ({ status: "passes", test: TEST_ID, fixed: false, message: "hone: The test passes already." });
  vscode.window.activeTextEditor = {
    document: { uri: vscode.Uri.file("/repo/tests/test_ages.py"), languageId: "python" },
    selection: { active: new vscode.Position(7, 4) },
  };
  await run("hone.fixFailingTest");
  assert.deepEqual(c.requests[0].params.arguments, [
    { uri: "file:///repo/tests/test_ages.py", position: { line: 7, character: 4 }, confirm: "client" },
  ]);
  assert.deepEqual(vscode.calls.infos, ["hone: The test passes already."]);
  assert.deepEqual(vscode.calls.modals, []);

  // No Python editor: say what to do, send nothing.
  vscode.window.activeTextEditor = { document: { uri: vscode.Uri.file("/repo/README.md"), languageId: "markdown" }, selection: { active: new vscode.Position(0, 0) } };
  await run("hone.fixFailingTest");
  vscode.window.activeTextEditor = undefined;
  await run("hone.localize");
  assert.equal(c.requests.length, 1);
  assert.equal(vscode.calls.errors.length, 2);
  assert.match(vscode.calls.errors[0], /put the cursor inside the failing test/);
  await extension.deactivate();
});

test("fix: not fixed → a warning; a server error → its message; several files → the unified diff", async () => {
  const { extension, vscode, c, run } = await withCommands();
  c.answers["hone.fixFailingTest"] = () => ({ status: "not-fixed", test: TEST_ID, fixed: false, fixId: null, message: "Tried 12 candidates; none made the test pass." });
  await run("hone.fixFailingTest", { testId: TEST_ID });
  assert.deepEqual(vscode.calls.warnings, ["hone: Tried 12 candidates; none made the test pass."]);

  c.answers["hone.fixFailingTest"] = () => {
    throw Object.assign(new Error("Running tests is off in this workspace (runCode is false): trust the workspace."), { code: -32603 });
  };
  assert.equal(await run("hone.fixFailingTest", { testId: TEST_ID }), undefined);
  assert.deepEqual(vscode.calls.errors, ["hone: Running tests is off in this workspace (runCode is false): trust the workspace."]);

  const twoFiles = {
    ...FIX_ANSWER,
    fixId: "fix-2",
    changes: [...FIX_ANSWER.changes, { uri: "file:///repo/pkg/other.py", path: "pkg/other.py", text: "x = 1\n" }],
  };
  c.answers["hone.fixFailingTest"] = () => twoFiles;
  await run("hone.fixFailingTest", { testId: TEST_ID });
  assert.deepEqual(vscode.calls.openedDocuments, [{ language: "diff", content: FIX_ANSWER.diff }]);
  assert.equal(vscode.calls.shownDocuments.length, 1);
  assert.match(vscode.calls.modals[0].options.detail, /pkg\/ages\.py, pkg\/other\.py/);
  assert.equal(vscode.calls.executed.filter((e) => e.id === "vscode.diff").length, 0);
  await extension.deactivate();
});

test("fix: Cancel on the progress sends window/workDoneProgress/cancel for its token", async () => {
  const { extension, vscode, c, run } = await withCommands();
  c.answers["hone.fixFailingTest"] = (argument, server) => {
    vscode.calls.progress[0].cancel();
    return { status: "cancelled", test: TEST_ID, fixed: false, message: "Cancelled." };
  };
  await run("hone.fixFailingTest", { testId: TEST_ID });
  const token = c.requests[0].params.workDoneToken;
  assert.deepEqual(c.notifications, [{ method: "window/workDoneProgress/cancel", params: { token } }]);
  assert.deepEqual(vscode.calls.infos, ["hone: Cancelled."]);
  await extension.deactivate();
});

test("localize: a quick pick of the functions, best first; picking one opens it at its first line", async () => {
  const { extension, vscode, c, run, nexts } = await withCommands();
  const functions = [
    { path: "pkg/ages.py", uri: AGES_URI, name: "is_adult", start_line: 3, end_line: 4, score: 0.91, signals: { coverage: 1, stack: 0.5 } },
    { path: "pkg/util.py", uri: "file:///repo/pkg/util.py", name: "clamp", start_line: 10, end_line: 12, score: 0.2, signals: ["coverage"] },
  ];
  c.answers["hone.localize"] = () => ({ status: "localized", test: TEST_ID, outcome: "failed", message: "2 functions ran in the failing test.", functions });
  vscode.answers.quickPick = (items) => items[0];
  await run("hone.localize", { testId: TEST_ID });
  assert.deepEqual(c.requests[0].params.arguments, [{ testId: TEST_ID }], "localize takes no confirm");
  const pick = vscode.calls.quickPicks[0];
  assert.deepEqual(pick.items.map((i) => i.description), ["pkg/ages.py:3-4", "pkg/util.py:10-12"]);
  assert.match(pick.items[0].label, /is_adult/);
  assert.match(pick.items[0].detail, /0\.91/);
  assert.match(pick.options.title, /2 functions/);
  assert.equal(vscode.calls.openedDocuments[0].toString(), AGES_URI);
  assert.deepEqual(vscode.calls.errors, []);
  const shown = vscode.calls.shownDocuments[0].options.selection;
  assert.deepEqual([shown.start.line, shown.start.character], [2, 0]);

  // Nothing to show: the message.
  c.answers["hone.localize"] = () => ({ status: "passes", test: TEST_ID, message: "The test passes.", functions: [] });
  await run("hone.localize", { testId: TEST_ID });
  assert.equal(vscode.calls.quickPicks.length, 1);
  assert.deepEqual(vscode.calls.infos, ["hone: The test passes."]);

  // hone.applyFix and anything else go to the client unchanged.
  assert.equal(await run("hone.applyFix", { fixId: "x" }), "sent by the client");
  assert.deepEqual(nexts, [{ command: "hone.applyFix", args: [{ fixId: "x" }] }]);
  await extension.deactivate();
});

// The whole flow: the real vscode-languageclient (against the fake `vscode`) and the real
// server, on a tiny repository with one failing test; repairs from the mutation templates only.
function makeFixtureRepo() {
  const repo = fs.mkdtempSync(path.join(os.tmpdir(), "hone-vscode-repair-"));
  const write = (rel, text) => {
    fs.mkdirSync(path.dirname(path.join(repo, rel)), { recursive: true });
    fs.writeFileSync(path.join(repo, rel), text);
  };
  write("pyproject.toml", '[project]\nname = "ages"\nversion = "0.0.0"\n\n[tool.pytest.ini_options]\npythonpath = ["."]\n');
  write("pkg/__init__.py", "");
  write("pkg/ages.py", "def is_adult(age):\n    return age > 18\n");
  write(
    "tests/test_ages.py",
    "from pkg.ages import is_adult\n\n\ndef test_child():\n    assert not is_adult(12)\n\n\ndef test_adult_at_18():\n    assert is_adult(18)\n",
  );
  cp.execFileSync("git", ["init", "-q"], { cwd: repo });
  return repo;
}

test("fix a failing test and localize, end to end: lens, trust, diff, Apply/Cancel, applyEdit", { timeout: 150_000 }, async (t) => {
  const hone = findHone();
  if (!hone) {
    t.skip("no hone executable (set HONE_COMMAND or create ../../.venv)");
    return;
  }
  const { createVscode, CancellationTokenSource } = require("./vscode-fake");
  const repo = makeFixtureRepo();
  const script = path.join(repo, "..", `${path.basename(repo)}-scripted.json`);
  fs.writeFileSync(script, JSON.stringify({ responses: [{ match: null, text: "pass\n" }], step_ms: 5 }));
  const settings = {
    command: hone,
    args: ["serve"],
    model: `scripted:${script}`,
    repairModel: false, // the mutation templates only: quick, and no model in the loop
    repairBudgetSeconds: 60,
    retrieval: false,
  };
  const fake = createVscode(settings, { trusted: false, workspaceFolders: [repo] });
  const { record, answers } = fake;
  const extension = await activateWithRealClient(fake);
  t.after(async () => {
    await extension.deactivate().catch(() => {});
    fs.rmSync(repo, { recursive: true, force: true });
    fs.rmSync(script, { force: true });
  });
  const output = () => fakeOutput(fake);
  const agesPath = path.join(repo, "pkg", "ages.py");
  const ORIGINAL = "def is_adult(age):\n    return age > 18\n";

  // The client registers the server's commands once the server is up.
  const deadline = Date.now() + 30_000;
  while (!record.commands["hone.localize"] && Date.now() < deadline) await sleep(20);
  for (const id of SERVER_COMMANDS) assert.equal(typeof record.commands[id], "function", `${id} not registered\n${output()}`);
  const testDoc = await fake.open(path.join(repo, "tests", "test_ages.py"));
  const agesDoc = await fake.open(agesPath);
  const fix = (...args) => fake.vscode.commands.executeCommand("hone.fixFailingTest", ...args);
  const lenses = async () => {
    const found = [];
    for (const { selector, provider } of record.codeLensProviders) {
      if (fake.vscode.languages.match(selector, testDoc) > 0) {
        found.push(...((await provider.provideCodeLenses(testDoc, new CancellationTokenSource().token)) || []));
      }
    }
    return found;
  };

  // Untrusted: no lenses, and the server refuses to run the tests (an error message).
  assert.deepEqual(await lenses(), [], "code lenses in an untrusted workspace");
  assert.equal(await fix({ testId: "tests/test_ages.py::test_adult_at_18" }), undefined);
  assert.equal(record.shown.length, 1, output());
  assert.equal(record.shown[0].level, "error", output());
  assert.match(record.shown[0].message, /runCode|trust/i, output());
  assert.ok(!/^hone: hone:/.test(record.shown[0].message), record.shown[0].message);
  assert.deepEqual(record.modals, []);
  record.shown.length = 0;

  // Trust granted: runCode goes to the server, which now offers a lens per test.
  fake.grantTrust();
  let found = [];
  const lensDeadline = Date.now() + 15_000;
  while (found.length === 0 && Date.now() < lensDeadline) {
    await sleep(100);
    found = await lenses();
  }
  const lens = found.find((l) => l.command && JSON.stringify(l.command.arguments || []).includes("test_adult_at_18"));
  assert.ok(lens, `no "Fix failing test" lens for test_adult_at_18: ${JSON.stringify(found)}\n${output()}`);
  assert.equal(lens.command.command, "hone.fixFailingTest");
  assert.match(lens.command.title, /Fix failing test/);
  assert.equal(lens.range.start.line, 7, "the lens is not on `def test_adult_at_18`");

  // Localize from the palette: the cursor in the test names it; is_adult is offered and opened.
  fake.setActiveEditor(testDoc, 8, 8);
  answers.quickPick = (items) => items.find((i) => i.fn.name === "is_adult");
  const localized = await fake.vscode.commands.executeCommand("hone.localize");
  assert.equal(localized && localized.status, "localized", `${JSON.stringify(localized)}\n${output()}`);
  assert.equal(record.quickPicks.length, 1, output());
  const picked = record.quickPicks[0].picked;
  assert.ok(picked, `is_adult not among ${JSON.stringify(record.quickPicks[0].items.map((i) => i.label))}`);
  assert.equal(picked.fn.path, "pkg/ages.py");
  assert.equal(picked.fn.start_line, 1);
  const opened = record.shownDocuments.at(-1);
  assert.equal(opened.document, agesDoc);
  assert.equal(opened.options.selection.start.line, 0);

  // The lens's command, answered Cancel: the change was shown, nothing applied.
  answers.modal = () => undefined;
  const cancelled = await fix(...lens.command.arguments);
  assert.equal(cancelled && cancelled.status, "fixed", `${JSON.stringify(cancelled)}\n${output()}`);
  assert.equal(record.modals.length, 1, output());
  assert.equal(record.modals[0].options.modal, true);
  assert.deepEqual(record.modals[0].items, ["Apply"]);
  const diff = record.executed.find((e) => e.id === "vscode.diff");
  assert.ok(diff, `no diff shown\n${output()}`);
  assert.equal(diff.args[0].toString(), agesDoc.uri.toString());
  const proposed = record.contentProviders["hone-fix"].provideTextDocumentContent(diff.args[1]);
  assert.match(proposed, /return age >= 18/);
  assert.deepEqual(record.appliedEdits, [], "Cancel applied an edit");
  assert.equal(agesDoc.getText(), ORIGINAL);
  const progress = record.progress.filter((p) => p.options.location === fake.vscode.ProgressLocation.Notification);
  assert.ok(progress.length >= 2 && progress.every((p) => p.options.cancellable), "no cancellable progress");
  assert.ok(progress.at(-1).reports.length > 1, "the server sent no $/progress on the extension's token");

  // From the palette, answered Apply: the server's versioned edit reaches the open document.
  answers.modal = (message, options, items) => items[0];
  fake.setActiveEditor(testDoc, 8, 4);
  const versionBefore = agesDoc.version;
  const applied = await fix();
  assert.equal(applied && applied.applied, true, `${JSON.stringify(applied)}\n${output()}`);
  assert.equal(record.appliedEdits.length, 1, output());
  assert.equal(record.appliedEdits[0][0].uri.toString(), agesDoc.uri.toString());
  assert.equal(agesDoc.getText(), "def is_adult(age):\n    return age >= 18\n");
  assert.equal(agesDoc.version, versionBefore + 1);
  assert.equal(fs.readFileSync(agesPath, "utf8"), ORIGINAL, "the file on disk changed: the editor saves, not the server");
  assert.equal(record.shown.at(-1).level, "info", output());

  // The server sees the unsaved edit: the test passes now.
  const again = await fix({ testId: "tests/test_ages.py::test_adult_at_18" });
  assert.equal(again && again.status, "passes", `${JSON.stringify(again)}\n${output()}`);
  assert.equal(record.appliedEdits.length, 1);
  assert.ok(!record.shown.some((s) => s.level === "error"), output());
  if (process.env.HONE_CHECK_VERBOSE) {
    console.log(output());
    console.log(JSON.stringify(record.progress.map((p) => [p.options.title, p.reports.map((r) => r.message)]), null, 1));
  }
});

// ---------------------------------------------------------------- 6. attach to a running server
const jsonrpc = require("vscode-jsonrpc/node");

/** A random token: long, and unlike anything else in the output. */
const randomToken = (label) => `${label}-${crypto.randomBytes(16).toString("hex")}`;

/** A token file in `dir`, owner-only, as `hone serve` writes one (the token, a newline). */
function writeTokenFile(dir, secret, name = "token") {
  const file = path.join(dir, name);
  fs.writeFileSync(file, `${secret}\n`, { mode: 0o600 });
  return file;
}

/** A TCP port on 127.0.0.1 that was free a moment ago. */
async function freePort() {
  const server = net.createServer();
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

/**
 * A stand-in listener (plain TCP, or TLS with `tlsOptions`) that records the first LSP message
 * of each connection: `next()` resolves to the next connection's message. It answers nothing,
 * or what `answer(message, socket)` writes.
 */
async function recordingListener(tlsOptions, answer) {
  const firsts = [];
  const waiting = [];
  const sockets = new Set();
  let connections = 0;
  const onSocket = (socket) => {
    connections++;
    sockets.add(socket);
    socket.on("error", () => {});
    socket.on("close", () => sockets.delete(socket));
    const reader = new jsonrpc.StreamMessageReader(socket);
    let seen = 0;
    reader.listen((message) => {
      if (seen++ > 0) return;
      if (answer) answer(message, socket);
      const resolve = waiting.shift();
      if (resolve) resolve(message);
      else firsts.push(message);
    });
  };
  const { createServer } = tlsOptions ? require("node:tls") : net;
  const server = tlsOptions ? createServer(tlsOptions, onSocket) : createServer(onSocket);
  server.on("tlsClientError", () => {});
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: server.address().port,
    connections: () => connections,
    next: () => (firsts.length ? Promise.resolve(firsts.shift()) : new Promise((resolve) => waiting.push(resolve))),
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

/** Send an initialize request (and `initialized`) over transports from serverOptions. */
async function sendInitialize(transports, initializationOptions) {
  await transports.writer.write({ jsonrpc: "2.0", id: 0, method: "initialize", params: { processId: 1, capabilities: {}, initializationOptions } });
  await transports.writer.write({ jsonrpc: "2.0", method: "initialized", params: {} });
}

/** Set environment variables (undefined unsets) for one test. */
function setEnv(t, changes) {
  const saved = Object.fromEntries(Object.keys(changes).map((key) => [key, process.env[key]]));
  const apply = (values) => {
    for (const [key, value] of Object.entries(values)) {
      if (value === undefined) delete process.env[key];
      else process.env[key] = value;
    }
  };
  apply(changes);
  t.after(() => apply(saved));
}

/** serverOptions of an extension activated (stand-in client) with `settings`. */
async function attachOptions(settings) {
  const { extension, vscode, client } = loadExtension(settings);
  await extension.activate(context());
  await extension.deactivate();
  return { serverOptions: client.instances[0] && client.instances[0].serverOptions, vscode, client };
}

test("manifest: hone.tcp, hone.tokenFile, hone.tls, hone.tlsCaFile: client-only, user settings in untrusted workspaces", () => {
  const expected = { "hone.tcp": ["string", ""], "hone.tokenFile": ["string", ""], "hone.tls": ["boolean", false], "hone.tlsCaFile": ["string", ""] };
  const { extension } = loadExtension({});
  for (const [key, [type, dflt]] of Object.entries(expected)) {
    assert.ok(props[key], `missing setting ${key}`);
    assert.equal(props[key].type, type, `${key} type`);
    assert.equal(props[key].default, dflt, `${key} default`);
    assert.ok(props[key].description, `${key} needs a description`);
    assert.ok(extension.CLIENT_ONLY.includes(key.slice("hone.".length)), `${key} would be sent to the server`);
    // An untrusted workspace must not send the user's token elsewhere.
    assert.ok(pkg.capabilities.untrustedWorkspaces.restrictedConfigurations.includes(key), `${key} not restricted`);
  }
  assert.match(props["hone.tokenFile"].description, /HONE_TOKEN/);
  assert.match(props["hone.tokenFile"].description, /tcp-PORT\.token/);
});

test("hone.tcp: serverOptions connects; the token goes only into the initialize request, on the wire", async (t) => {
  const secret = randomToken("secret");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hone-vscode-tcp-"));
  const file = writeTokenFile(tmp, secret);
  const listener = await recordingListener();
  t.after(async () => {
    await listener.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const settings = { tcp: `127.0.0.1:${listener.port}`, tokenFile: file, multiline: false };
  const { extension, vscode, client } = loadExtension(settings, { trusted: true });
  await extension.activate(context());
  const c = client.instances[0];
  assert.equal(typeof c.serverOptions, "function", "attached, serverOptions is a function that connects");
  assert.equal(c.clientOptions.initializationFailedHandler(new Error("refused")), false, "a refused initialize is retried");
  assert.equal(c.clientOptions.errorHandler.closed().action, 1 /* DoNotRestart */, "a lost connection is retried");
  const init = c.clientOptions.initializationOptions();
  assert.deepEqual(init, { ...extension.SERVER_OPTION_DEFAULTS, multiline: false, runCode: true }, "the token is no option");

  const transports = await c.serverOptions();
  t.after(() => transports.writer.dispose());
  await sendInitialize(transports, init);
  const first = await listener.next();
  assert.equal(first.method, "initialize");
  assert.deepEqual(first.params.initializationOptions, { ...init, token: secret });
  assert.equal(init.token, undefined, "the client's own params got the token");

  // didChangeConfiguration: the server options and runCode, no token; no restart.
  settings.maxLines = 3;
  await fireConfigChange(vscode, "hone.maxLines");
  assert.deepEqual(c.notifications, [
    {
      method: "workspace/didChangeConfiguration",
      params: { settings: { hone: { ...extension.SERVER_OPTION_DEFAULTS, multiline: false, maxLines: 3, runCode: true } } },
    },
  ]);
  assert.ok(!JSON.stringify(c.notifications).includes(secret), "the token is in didChangeConfiguration");
  // The launch settings concern the extension's own server: no restart (it would stop this one).
  settings.model = "scripted:/tmp/x.json";
  await fireConfigChange(vscode, "hone.model");
  assert.equal(client.instances.length, 1, "hone.model restarted an attached client");
  // The log names where the token came from, never the token.
  assert.ok(vscode.channel.lines.some((line) => line.includes(file)), vscode.channel.lines.join("\n"));
  assert.ok(!vscode.channel.lines.join("\n").includes(secret), "the token is in the log");
  // Another address: attach again.
  settings.tcp = "127.0.0.1:9";
  await fireConfigChange(vscode, "hone.tcp");
  assert.equal(client.instances.length, 2, "a new client after hone.tcp changed");
  assert.equal(c.running, false);
  await extension.deactivate();
});

test("hone.tcp: the token from hone.tokenFile, else HONE_TOKEN, else the server's default file; else where it looked", async (t) => {
  const runtime = fs.mkdtempSync(path.join(os.tmpdir(), "hone-vscode-runtime-"));
  const listener = await recordingListener();
  t.after(async () => {
    await listener.close();
    fs.rmSync(runtime, { recursive: true, force: true });
  });
  setEnv(t, { XDG_RUNTIME_DIR: runtime, HONE_TOKEN: undefined });
  const tcp = `127.0.0.1:${listener.port}`;
  const defaultFile = path.join(runtime, "hone", `tcp-${listener.port}.token`);
  const tokenSent = async (serverOptions) => {
    const transports = await serverOptions();
    await sendInitialize(transports, {});
    const first = await listener.next();
    transports.writer.dispose();
    return first.params.initializationOptions.token;
  };

  const { serverOptions: implicit } = await attachOptions({ tcp });
  await assert.rejects(implicit(), (error) => {
    for (const place of ['"hone.tokenFile" is not set', "HONE_TOKEN is not set", `${defaultFile} does not exist`]) {
      assert.ok(error.message.includes(place), `"${place}" not in: ${error.message}`);
    }
    return true;
  });
  fs.mkdirSync(path.dirname(defaultFile), { mode: 0o700 });
  writeTokenFile(path.dirname(defaultFile), "from-the-default-file-0123456789", path.basename(defaultFile));
  assert.equal(await tokenSent(implicit), "from-the-default-file-0123456789");
  process.env.HONE_TOKEN = " from-the-environment-0123456789\n";
  assert.equal(await tokenSent(implicit), "from-the-environment-0123456789");
  const file = writeTokenFile(runtime, "from-the-token-file-0123456789");
  const { serverOptions: explicit } = await attachOptions({ tcp, tokenFile: file });
  assert.equal(await tokenSent(explicit), "from-the-token-file-0123456789");
  // A tokenFile that is not there is an error, not a fallback to the others.
  const { serverOptions: missing } = await attachOptions({ tcp, tokenFile: path.join(runtime, "nope") });
  await assert.rejects(missing(), /"hone\.tokenFile" .*nope does not exist/);
});

test("hone.tcp: a malformed address or nothing listening: a clear message", async (t) => {
  for (const bad of ["localhost", "127.0.0.1:0", "127.0.0.1:99999", "::1:2087", "host:port"]) {
    const { extension, vscode, client } = loadExtension({ tcp: bad });
    await extension.activate(context());
    assert.equal(client.instances.length, 0, `a client for "${bad}"`);
    assert.equal(vscode.calls.errors.length, 1, bad);
    assert.match(vscode.calls.errors[0], /^hone: "hone\.tcp" must be HOST:PORT/, bad);
    await extension.deactivate();
  }
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hone-vscode-tcp-"));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const file = writeTokenFile(tmp, randomToken("secret"));
  const port = await freePort();
  const { serverOptions } = await attachOptions({ tcp: `127.0.0.1:${port}`, tokenFile: file });
  await assert.rejects(serverOptions(), new RegExp(`^Error: nothing listens at 127\\.0\\.0\\.1:${port}: start \`hone serve --tcp`));
});

test("hone.tls: TLS with hone.tlsCaFile for a self-signed certificate; without it, a message naming the setting", async (t) => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hone-vscode-tls-"));
  t.after(() => fs.rmSync(tmp, { recursive: true, force: true }));
  const cert = path.join(tmp, "cert.pem");
  const key = path.join(tmp, "key.pem");
  try {
    cp.execFileSync("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
      "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", key, "-out", cert,
    ], { stdio: "ignore" });
  } catch {
    t.skip("no openssl to make a self-signed certificate");
    return;
  }
  const listener = await recordingListener({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
  t.after(() => listener.close());
  const secret = randomToken("secret");
  const file = writeTokenFile(tmp, secret);
  for (const host of ["127.0.0.1", "localhost"]) {
    const { serverOptions } = await attachOptions({ tcp: `${host}:${listener.port}`, tokenFile: file, tls: true, tlsCaFile: cert });
    const transports = await serverOptions();
    await sendInitialize(transports, {});
    assert.equal((await listener.next()).params.initializationOptions.token, secret, host);
    transports.writer.dispose();
  }
  const { serverOptions: untrusted } = await attachOptions({ tcp: `127.0.0.1:${listener.port}`, tokenFile: file, tls: true });
  await assert.rejects(untrusted(), /cannot trust the TLS certificate .*"hone\.tlsCaFile"/);
  const { serverOptions: noCa } = await attachOptions({ tcp: `127.0.0.1:${listener.port}`, tokenFile: file, tls: true, tlsCaFile: path.join(tmp, "nope.pem") });
  await assert.rejects(noCa(), /cannot read "hone\.tlsCaFile"/);
});

test("attached, refused: the real client shows the server's words once, though the close comes with them", { timeout: 30_000 }, async (t) => {
  // As the server does (server/transport.py), but the answer and the close in one write: the
  // client may see the connection closed before it handles the answer.
  const REFUSAL = "hone refused the connection: a wrong token. Pass the server's token as initializationOptions.token (see `hone serve --help`).";
  const frame = (message) => {
    const body = JSON.stringify({ jsonrpc: "2.0", ...message });
    return `Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
  };
  const listener = await recordingListener(undefined, (message, socket) => {
    // (LSP lets a server log before it answers initialize; the client handles one message per
    // turn of the event loop, and the close in between.)
    const log = frame({ method: "window/logMessage", params: { type: 3, message: "refusing" } });
    socket.end(log + frame({ id: message.id, error: { code: -32001, message: REFUSAL } }));
  });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hone-vscode-tcp-"));
  t.after(async () => {
    await listener.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const secret = randomToken("secret");
  const file = writeTokenFile(tmp, secret);
  for (let round = 0; round < 5; round++) {
    const fake = tracingVscode({ tcp: `127.0.0.1:${listener.port}`, tokenFile: file, "trace.server": "verbose" });
    const extension = await activateWithRealClient(fake);
    const first = await listener.next();
    assert.equal(first.params.initializationOptions.token, secret);
    await sleep(200);
    await extension.deactivate().catch(() => {});
    assert.deepEqual(
      fake.record.shown.map((s) => s.level + ": " + s.message),
      [`error: hone: could not attach to the server at 127.0.0.1:${listener.port}: ${REFUSAL} The token sent came from "hone.tokenFile" (${file}): it must be the one that server uses.`],
      `round ${round}`,
    );
    assert.equal(fake.record.inlineProviders.length, 0);
    assert.ok(!channelText(fake).includes(secret), "the token is in the output");
  }
});

test("attached, the connection lost: one message saying what to do, no reconnecting", { timeout: 30_000 }, async (t) => {
  const listener = await recordingListener(undefined, (message, socket) => {
    const body = JSON.stringify({ jsonrpc: "2.0", id: message.id, result: { capabilities: {} } });
    socket.write(`Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`);
    setTimeout(() => socket.destroy(), 300); // as when the server stops
  });
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hone-vscode-tcp-"));
  t.after(async () => {
    await listener.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const fake = tracingVscode({ tcp: `127.0.0.1:${listener.port}`, tokenFile: writeTokenFile(tmp, randomToken("secret")) });
  const extension = await activateWithRealClient(fake);
  t.after(() => extension.deactivate().catch(() => {}));
  assert.deepEqual(fake.record.shown, [], "a message while the connection is up");
  const deadline = Date.now() + 10_000;
  while (fake.record.shown.length === 0 && Date.now() < deadline) await sleep(20);
  await sleep(1000); // a restart would connect again meanwhile
  assert.deepEqual(
    fake.record.shown.map((s) => s.level + ": " + s.message),
    [`error: hone: the server at 127.0.0.1:${listener.port} closed the connection (it stops when its client disconnects): start it again, then run "hone: Restart language server".`],
  );
  assert.equal(listener.connections(), 1, "the client connected again");
});

// With the real client and the real `hone serve --tcp` (one server for the two tests below: a
// refused connection leaves it serving; the attached client's disconnect stops it).
let tcpServer;

/** `hone serve --tcp 127.0.0.1:PORT` with a scripted model and HONE_TOKEN; resolves once it listens. */
function sharedTcpServer(hone) {
  tcpServer ??= (async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "hone-vscode-tcp-server-"));
    const script = path.join(dir, "scripted.json");
    fs.writeFileSync(script, JSON.stringify({ responses: [{ match: null, text: "return a + b\n" }], step_ms: 5 }));
    const secret = randomToken("server-secret");
    const port = await freePort();
    const proc = cp.spawn(hone, ["serve", "--tcp", `127.0.0.1:${port}`, "--model", `scripted:${script}`], {
      env: { ...process.env, HONE_TOKEN: secret },
      stdio: ["ignore", "ignore", "pipe"],
    });
    let stderr = "";
    const exited = new Promise((resolve) => proc.on("exit", (code, signal) => resolve({ code, signal })));
    const stop = () => {
      proc.kill("SIGKILL");
      fs.rmSync(dir, { recursive: true, force: true });
    };
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`hone serve --tcp did not listen within 60 s\n${stderr}`)), 60_000);
      proc.stderr.on("data", (data) => {
        stderr += data;
        if (stderr.includes("Language Server Protocol on tcp")) {
          clearTimeout(timer);
          resolve();
        }
      });
      exited.then(({ code }) => reject(new Error(`hone serve --tcp exited (${code})\n${stderr}`)));
    });
    return { address: `127.0.0.1:${port}`, secret, proc, exited, stderr: () => stderr, stop };
  })();
  return tcpServer;
}

after(async () => {
  const server = tcpServer && (await tcpServer.catch(() => undefined));
  if (server) server.stop();
});

/** Everything the output channels got, in full. */
const channelText = (fake) => fake.record.channels.map((c) => c.lines.join("\n")).join("\n");

/** A fake `vscode` whose output channels log at Trace level (so `trace.server` traces). */
function tracingVscode(settings) {
  const { createVscode } = require("./vscode-fake");
  const fake = createVscode(settings);
  const create = fake.vscode.window.createOutputChannel;
  fake.vscode.window.createOutputChannel = (...args) => Object.assign(create(...args), { logLevel: fake.vscode.LogLevel.Trace });
  return fake;
}

test("attached with a wrong token: no client; the server's refusal shown once, not retried; the token nowhere", { timeout: 120_000 }, async (t) => {
  const hone = findHone();
  if (!hone) {
    t.skip("no hone executable (set HONE_COMMAND or create ../../.venv)");
    return;
  }
  const server = await sharedTcpServer(hone);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hone-vscode-tcp-"));
  const wrong = randomToken("wrong");
  const file = writeTokenFile(tmp, wrong);
  const fake = tracingVscode({ tcp: server.address, tokenFile: file, "trace.server": "verbose" });
  const extension = await activateWithRealClient(fake);
  t.after(async () => {
    await extension.deactivate().catch(() => {});
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const output = () => fakeOutput(fake);
  await sleep(1500); // a retry would connect again meanwhile

  assert.equal(fake.record.shown.length, 1, `not one message:\n${output()}`);
  const [shown] = fake.record.shown;
  assert.equal(shown.level, "error");
  assert.match(shown.message, /^hone: could not attach to the server at 127\.0\.0\.1:\d+: hone refused the connection: a wrong token\./, output());
  assert.ok(shown.message.includes(file), `the message does not say where the token came from: ${shown.message}`);
  assert.equal(fake.record.inlineProviders.length, 0, "a client runs");
  assert.equal(server.stderr().match(/refused connection/g)?.length, 1, `not one connection:\n${server.stderr()}`);
  assert.equal(server.proc.exitCode, null, "the refusal stopped the server");
  // The trace shows the initialize request went out with its options, yet no token anywhere.
  const logged = `${channelText(fake)}\n${JSON.stringify(fake.record.shown)}`;
  assert.match(logged, /Sending request 'initialize[^]*"initializationOptions"/, "no trace of initialize");
  assert.ok(!logged.includes(wrong), "the token sent is in the output or a message");
  assert.ok(!logged.includes(server.secret));
  // TLS against a plain listener: it closes at the handshake, and the message says what to turn off.
  const { serverOptions } = await attachOptions({ tcp: server.address, tokenFile: file, tls: true });
  await assert.rejects(serverOptions(), /the TLS handshake with the hone server at .* failed .*turn "hone\.tls" off/);
});

test("attached over TCP: the real client completes inline from `hone serve --tcp`; its disconnect stops the server", { timeout: 120_000 }, async (t) => {
  const hone = findHone();
  if (!hone) {
    t.skip("no hone executable (set HONE_COMMAND or create ../../.venv)");
    return;
  }
  const { makeDocument, Position, Uri, CancellationTokenSource } = require("./vscode-fake");
  const server = await sharedTcpServer(hone);
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "hone-vscode-tcp-"));
  const file = writeTokenFile(tmp, server.secret);
  assert.equal(fs.statSync(file).mode & 0o777, 0o600);
  const settings = { tcp: server.address, tokenFile: file, "trace.server": "verbose", debounceMs: 0 };
  const fake = tracingVscode(settings);
  const extension = await activateWithRealClient(fake);
  t.after(async () => {
    await extension.deactivate().catch(() => {});
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const output = () => fakeOutput(fake);
  const { provider } = await inlineProvider(fake, () => `${output()}\n${server.stderr()}`);
  const doc = makeDocument(Uri.file(path.join(tmp, "demo.py")), "python", "def add(a, b):\n    \n");
  fake.openDocument(doc);
  const answer = await provider.provideInlineCompletionItems(
    doc,
    new Position(1, 4),
    { triggerKind: fake.vscode.InlineCompletionTriggerKind.Automatic, selectedCompletionInfo: undefined },
    new CancellationTokenSource().token,
  );
  const items = Array.isArray(answer) ? answer : answer.items;
  assert.ok(items.length > 0, `no items\n${output()}`);
  assert.equal(String(items[0].insertText).trimEnd(), "return a + b");
  // One client at a time: a second one is turned away, and says why.
  const second = tracingVscode({ ...settings });
  const secondExtension = await activateWithRealClient(second);
  await secondExtension.deactivate().catch(() => {});
  assert.equal(second.record.shown.length, 1, fakeOutput(second));
  assert.match(second.record.shown[0].message, /^hone: could not attach to the server at .*: it closed the connection without answering \(it serves one client at a time/);
  assert.ok(!channelText(second).includes(server.secret), "the token is in the second client's output");
  // A settings change reaches the server (which takes it without a complaint).
  settings.maxLines = 4;
  fake.changeConfiguration("hone.maxLines");
  await sleep(300);
  assert.deepEqual(fake.record.shown, [], output());
  const logged = channelText(fake);
  assert.match(logged, /Sending request 'initialize[^]*"initializationOptions"/, "no trace of initialize");
  assert.match(logged, /Sending notification 'workspace\/didChangeConfiguration'/);
  assert.ok(!logged.includes(server.secret), "the token is in the output");

  await extension.deactivate();
  let timer;
  const stopped = await Promise.race([server.exited, new Promise((resolve) => (timer = setTimeout(resolve, 15_000, null)))]);
  clearTimeout(timer);
  assert.ok(stopped, `the server still runs after its client disconnected\n${server.stderr()}`);
  assert.deepEqual(fake.record.shown, [], `a message after a normal disconnect:\n${output()}`);
});
