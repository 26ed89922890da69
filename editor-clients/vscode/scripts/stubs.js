// Stand-ins for `vscode` and vscode-languageclient's LanguageClient that record what the
// extension does, and a loader for the compiled extension against them. Used by check.js
// and settings-sent.js.
"use strict";
const assert = require("node:assert/strict");
const fs = require("node:fs");
const path = require("node:path");
const Module = require("node:module");

const ROOT = path.resolve(__dirname, "..");
const pkg = JSON.parse(fs.readFileSync(path.join(ROOT, "package.json"), "utf8"));

function makeVscodeStub(settings) {
  const calls = { errors: [], commands: {}, configListeners: [] };
  const disposable = { dispose() {} };
  const channel = {
    lines: [],
    info(m) { this.lines.push(m); },
    warn(m) { this.lines.push(m); },
    error(m) { this.lines.push(m); },
    show() {},
    dispose() {},
  };
  const vscode = {
    calls,
    channel,
    StatusBarAlignment: { Left: 1, Right: 2 },
    workspace: {
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
    },
    commands: {
      registerCommand(id, fn) {
        calls.commands[id] = fn;
        return disposable;
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
  }
  return {
    instances,
    module: {
      LanguageClient,
      State,
      TransportKind: { stdio: 0, ipc: 1, pipe: 2, socket: 3 },
      DidChangeConfigurationNotification: { type: { method: "workspace/didChangeConfiguration" } },
    },
  };
}

/** Load out/extension.js afresh with `vscode` and `vscode-languageclient/node` stubbed. */
function loadExtension(settings) {
  const vscode = makeVscodeStub(settings);
  const client = makeClientStub();
  const main = path.join(ROOT, pkg.main);
  const originalLoad = Module._load;
  Module._load = function (request, parent, isMain) {
    if (request === "vscode") return vscode;
    if (request === "vscode-languageclient/node") return client.module;
    return originalLoad.call(this, request, parent, isMain);
  };
  try {
    delete require.cache[require.resolve(main)];
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

const context = () => ({ subscriptions: [] });

module.exports = { makeVscodeStub, makeClientStub, loadExtension, changeEvent, fireConfigChange, context };
