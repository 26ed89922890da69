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
"use strict";
const assert = require("node:assert/strict");
const fs = require("node:fs");
const os = require("node:os");
const path = require("node:path");
const cp = require("node:child_process");
const Module = require("node:module");
const { test } = require("node:test");

const ROOT = path.resolve(__dirname, "..");
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));
const props = pkg.contributes.configuration.properties;

const { loadExtension, fireConfigChange, context } = require("./stubs");

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
  assert.deepEqual([...forwarded].sort(), contributed.filter((k) => !extension.CLIENT_ONLY.includes(k)).sort());
  assert.deepEqual([...extension.CLIENT_ONLY].sort(), ["args", "command", "model", "trace.server"]);
  for (const name of ["maxNewTokensMulti", "maxLines", "retrievalTokens", "contextTokens", "enable"]) {
    assert.ok(forwarded.includes(name), `${name} is not forwarded`);
  }
});

test("the code's fallback defaults equal package.json's defaults", () => {
  const { extension, vscode } = loadExtension({});
  const config = vscode.workspace.getConfiguration("hone");
  const fromCode = extension.readServerSettings(config);
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
  assert.deepEqual(init, { ...extension.SERVER_OPTION_DEFAULTS, maxNewTokensMulti: 48, maxLines: 5, debounceMs: 10 });
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
      params: { settings: { hone: { ...extension.SERVER_OPTION_DEFAULTS, multiline: false } } },
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

  // Load the extension and the real client library against the fake `vscode`.
  const main = require.resolve(path.join(ROOT, pkg.main));
  for (const key of Object.keys(require.cache)) {
    if (key === main || key.includes(`${path.sep}node_modules${path.sep}vscode-languageclient${path.sep}`)) {
      delete require.cache[key];
    }
  }
  const originalLoad = Module._load;
  Module._load = function (request, parent, isMain) {
    if (request === "vscode") return fake.vscode;
    return originalLoad.call(this, request, parent, isMain);
  };
  let extension;
  try {
    extension = require(main);
    await extension.activate(context());
  } finally {
    Module._load = originalLoad;
  }
  t.after(async () => {
    await extension.deactivate().catch(() => {});
    fs.rmSync(tmp, { recursive: true, force: true });
  });
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const output = () =>
    [
      ...fake.record.shown.map((s) => `${s.level}: ${s.message}`),
      ...fake.record.channels.map((c) => `--- output channel ${c.name} ---\n${c.lines.join("\n").slice(-3000)}`),
    ].join("\n");

  const deadline = Date.now() + 30_000;
  while (fake.record.inlineProviders.length === 0 && Date.now() < deadline) await sleep(20);
  assert.equal(fake.record.inlineProviders.length, 1, `no inline completion provider registered\n${output()}`);
  const { selector, provider } = fake.record.inlineProviders[0];

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
