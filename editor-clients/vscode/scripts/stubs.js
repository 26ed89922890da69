// Stand-ins for `vscode` and vscode-languageclient's LanguageClient that record what the
// extension does, and a loader for the compiled extension against them. Used by check.js
// and settings-sent.js.
"use strict";
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const Module = require("node:module");

const { Position, Range, Uri, CancellationTokenSource } = require("./vscode-fake");
// The real LSP framing (what vscode-languageclient/node re-exports), for serverOptions over TCP.
const { StreamMessageReader, StreamMessageWriter } = require("vscode-jsonrpc/node");

const ROOT = path.resolve(__dirname, "..");
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));

/**
 * `settings`: what getConfiguration("hone") returns. `options.trusted`: workspace trust.
 * The window's answers are scripted with `vscode.answers`: `modal(message, options, items)`
 * answers showInformationMessage with `{modal: true}`, `quickPick(items, options)` picks.
 */
function makeVscodeStub(settings, options = {}) {
  const calls = {
    errors: [],
    infos: [],
    warnings: [],
    modals: [],
    quickPicks: [],
    executed: [],
    progress: [],
    shownDocuments: [],
    openedDocuments: [],
    commands: {},
    configListeners: [],
    trustListeners: [],
    contentProviders: {},
  };
  const disposable = { dispose() {} };
  const channel = {
    lines: [],
    info(m) { this.lines.push(m); },
    warn(m) { this.lines.push(m); },
    error(m) { this.lines.push(m); },
    show() {},
    dispose() {},
  };
  const answers = { modal: () => undefined, quickPick: (items) => items[0] };
  const vscode = {
    calls,
    channel,
    answers,
    Position,
    Range,
    Uri,
    StatusBarAlignment: { Left: 1, Right: 2 },
    ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
    workspace: {
      isTrusted: options.trusted === true,
      workspaceFolders: undefined,
      getConfiguration(section) {
        assert.equal(section, "hone");
        return {
          get(key, fallback) {
            return Object.prototype.hasOwnProperty.call(settings, key) ? settings[key] : fallback;
          },
        };
      },
      onDidChangeConfiguration(listener) {
        calls.configListeners.push(listener);
        return disposable;
      },
      onDidGrantWorkspaceTrust(listener) {
        calls.trustListeners.push(listener);
        return disposable;
      },
      registerTextDocumentContentProvider(scheme, provider) {
        assert.equal(calls.contentProviders[scheme], undefined, `two providers for ${scheme}:`);
        calls.contentProviders[scheme] = provider;
        return disposable;
      },
      async openTextDocument(what) {
        calls.openedDocuments.push(what);
        return what instanceof Uri ? { uri: what } : { uri: Uri.parse("untitled:Untitled-1"), ...what };
      },
    },
    window: {
      createOutputChannel(name, options) {
        assert.equal(name, "hone");
        assert.deepEqual(options, { log: true });
        return channel;
      },
      createStatusBarItem() {
        return { show() {}, hide() {}, dispose() {} };
      },
      showErrorMessage(message) {
        calls.errors.push(message);
        return Promise.resolve(undefined);
      },
      showWarningMessage(message) {
        calls.warnings.push(message);
        return Promise.resolve(undefined);
      },
      showInformationMessage(message, ...rest) {
        const first = rest[0];
        if (first && typeof first === "object" && first.modal) {
          const items = rest.slice(1);
          calls.modals.push({ message, options: first, items });
          return Promise.resolve(answers.modal(message, first, items));
        }
        calls.infos.push(message);
        return Promise.resolve(undefined);
      },
      showQuickPick(items, pickOptions) {
        calls.quickPicks.push({ items, options: pickOptions });
        return Promise.resolve(answers.quickPick(items, pickOptions));
      },
      async showTextDocument(document, showOptions) {
        calls.shownDocuments.push({ document, options: showOptions });
        return { document };
      },
      withProgress(progressOptions, task) {
        const source = new CancellationTokenSource();
        const entry = { options: progressOptions, reports: [], cancel: () => source.cancel() };
        calls.progress.push(entry);
        return task({ report: (value) => entry.reports.push(value) }, source.token);
      },
      activeTextEditor: undefined,
    },
    commands: {
      registerCommand(id, fn) {
        assert.equal(calls.commands[id], undefined, `command ${id} registered twice`);
        calls.commands[id] = fn;
        return disposable;
      },
      async executeCommand(id, ...args) {
        calls.executed.push({ id, args });
        return undefined;
      },
    },
  };
  return vscode;
}

function makeClientStub() {
  const State = { Stopped: 1, Starting: 3, Running: 2 };
  const instances = [];
  class LanguageClient {
    constructor(id, name, serverOptions, clientOptions) {
      Object.assign(this, { id, name, serverOptions, clientOptions });
      this.running = false;
      this.notifications = [];
      this.requests = [];
      // Scripted answers to workspace/executeCommand: command -> (argument, server) => result
      // (or throw); `server.progress(value)` sends $/progress on the request's work-done token.
      this.answers = {};
      this.progressHandlers = new Map();
      this.stateListeners = [];
      instances.push(this);
    }
    onDidChangeState(listener) {
      this.stateListeners.push(listener);
      return { dispose() {} };
    }
    async start() {
      this.running = true;
      for (const l of this.stateListeners) l({ oldState: State.Stopped, newState: State.Running });
    }
    async stop() {
      this.running = false;
    }
    isRunning() {
      return this.running;
    }
    async sendNotification(type, params) {
      this.notifications.push({ method: type.method, params });
    }
    async sendRequest(type, params) {
      this.requests.push({ method: type.method, params: JSON.parse(JSON.stringify(params)) });
      assert.equal(type.method, "workspace/executeCommand");
      const answer = this.answers[params.command];
      assert.ok(answer, `no scripted answer for ${params.command}`);
      const token = params.workDoneToken;
      const progress = (value) => {
        const handler = this.progressHandlers.get(token);
        if (handler) handler(value);
      };
      return answer(params.arguments[0], { progress, token, client: this });
    }
    onProgress(type, token, handler) {
      assert.equal(type.method, "$/progress");
      this.progressHandlers.set(token, handler);
      return { dispose: () => this.progressHandlers.delete(token) };
    }
    get state() {
      return this.running ? State.Running : State.Stopped;
    }
    error() {}
  }
  return {
    instances,
    module: {
      LanguageClient,
      State,
      TransportKind: { stdio: 0, ipc: 1, pipe: 2, socket: 3 },
      ErrorAction: { Continue: 1, Shutdown: 2 },
      CloseAction: { DoNotRestart: 1, Restart: 2 },
      StreamMessageReader,
      StreamMessageWriter,
      DidChangeConfigurationNotification: { type: { method: "workspace/didChangeConfiguration" } },
      ExecuteCommandRequest: { type: { method: "workspace/executeCommand" } },
      WorkDoneProgress: { type: { method: "$/progress" } },
      WorkDoneProgressCancelNotification: { type: { method: "window/workDoneProgress/cancel" } },
    },
  };
}

/**
 * Load out/extension.js afresh with `vscode` and `vscode-languageclient/node` stubbed
 * (`options.trusted`: workspace trust, default false).
 */
function loadExtension(settings, options = {}) {
  const vscode = makeVscodeStub(settings, options);
  const client = makeClientStub();
  const main = path.join(ROOT, pkg.main);
  const originalLoad = Module._load;
  Module._load = function (request, parent, isMain) {
    if (request === "vscode") return vscode;
    if (request === "vscode-languageclient/node") return client.module;
    return originalLoad.call(this, request, parent, isMain);
  };
  try {
    for (const file of fs.readdirSync(path.dirname(main))) {
      delete require.cache[path.join(path.dirname(main), file)];
    }
    return { extension: require(main), vscode, client };
  } finally {
    Module._load = originalLoad;
  }
}

function changeEvent(...keys) {
  return { affectsConfiguration: (s) => keys.some((k) => k === s || k.startsWith(s + ".")) };
}

async function fireConfigChange(vscode, ...keys) {
  for (const listener of vscode.calls.configListeners) await listener(changeEvent(...keys));
}

/** Grant workspace trust, as VS Code does: isTrusted turns true, then the event fires. */
async function grantTrust(vscode) {
  vscode.workspace.isTrusted = true;
  for (const listener of vscode.calls.trustListeners) await listener();
}

const context = () => ({ subscriptions: [] });

module.exports = { makeVscodeStub, makeClientStub, loadExtension, changeEvent, fireConfigChange, grantTrust, context };
