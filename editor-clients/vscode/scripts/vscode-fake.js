// A small in-memory stand-in for the `vscode` API: enough of it for vscode-languageclient to
// start a real server, sync documents and register providers, so scripts/check.js can drive
// the real client library without a VS Code window. Unknown `onX` members are events that never
// fire, unknown `registerX`/`createX` members return disposables; everything else is undefined.
"use strict";

class Disposable {
  constructor(fn) {
    this._fn = fn;
  }
  dispose() {
    if (this._fn) this._fn();
    this._fn = undefined;
  }
  static from(...items) {
    return new Disposable(() => items.forEach((d) => d && d.dispose && d.dispose()));
  }
}

class EventEmitter {
  constructor() {
    this.listeners = new Set();
    this.event = (listener, thisArg, disposables) => {
      const bound = thisArg ? listener.bind(thisArg) : listener;
      this.listeners.add(bound);
      const d = new Disposable(() => this.listeners.delete(bound));
      if (Array.isArray(disposables)) disposables.push(d);
      return d;
    };
  }
  fire(value) {
    for (const l of [...this.listeners]) l(value);
  }
  dispose() {
    this.listeners.clear();
  }
}

class Position {
  constructor(line, character) {
    this.line = line;
    this.character = character;
  }
  isBefore(o) {
    return this.line < o.line || (this.line === o.line && this.character < o.character);
  }
  isEqual(o) {
    return this.line === o.line && this.character === o.character;
  }
}

class Range {
  constructor(a, b, c, d) {
    if (typeof a === "number") {
      this.start = new Position(a, b);
      this.end = new Position(c, d);
    } else {
      this.start = a;
      this.end = b;
    }
  }
  get isEmpty() {
    return this.start.isEqual(this.end);
  }
}

class Uri {
  constructor(scheme, authority, path, query, fragment) {
    Object.assign(this, { scheme, authority, path, query, fragment });
    this.fsPath = path;
  }
  static file(p) {
    return new Uri("file", "", p, "", "");
  }
  static parse(value) {
    const u = new URL(value);
    return new Uri(u.protocol.replace(/:$/, ""), u.host, decodeURIComponent(u.pathname), u.search.slice(1), u.hash.slice(1));
  }
  toString() {
    return this.scheme === "file" ? "file://" + encodeURI(this.path) : `${this.scheme}:${this.path}`;
  }
  toJSON() {
    return this.toString();
  }
  with(change) {
    return new Uri(change.scheme ?? this.scheme, change.authority ?? this.authority, change.path ?? this.path, change.query ?? this.query, change.fragment ?? this.fragment);
  }
}

class CancellationTokenSource {
  constructor() {
    const emitter = new EventEmitter();
    this._emitter = emitter;
    this.token = { isCancellationRequested: false, onCancellationRequested: emitter.event };
  }
  cancel() {
    if (!this.token.isCancellationRequested) {
      this.token.isCancellationRequested = true;
      this._emitter.fire();
    }
  }
  dispose() {}
}

class CancellationError extends Error {}
// Base classes the client library extends at load time; never instantiated in these checks.
class Plain {}
const extendedClasses = Object.fromEntries(
  ["CallHierarchyItem", "CodeLens", "CompletionItem", "DocumentLink", "InlayHint", "SymbolInformation", "TypeHierarchyItem", "CodeAction", "Diagnostic"].map(
    (name) => [name, class extends Plain {}],
  ),
);
class SnippetString {
  constructor(value) {
    this.value = value;
  }
}
class InlineCompletionItem {
  constructor(insertText, range, command) {
    Object.assign(this, { insertText, range, command });
  }
}
class InlineCompletionList {
  constructor(items) {
    this.items = items;
  }
}

/** A text document as the language client sees it. */
function makeDocument(uri, languageId, text) {
  let lines = text.split("\n");
  const doc = {
    uri,
    fileName: uri.fsPath,
    languageId,
    version: 1,
    isUntitled: false,
    isDirty: false,
    isClosed: false,
    eol: 1,
    get lineCount() {
      return lines.length;
    },
    getText() {
      return lines.join("\n");
    },
    lineAt(line) {
      return { text: lines[typeof line === "number" ? line : line.line] };
    },
    offsetAt(pos) {
      let offset = 0;
      for (let i = 0; i < pos.line; i++) offset += lines[i].length + 1;
      return offset + pos.character;
    },
    positionAt(offset) {
      let line = 0;
      while (line < lines.length - 1 && offset > lines[line].length) {
        offset -= lines[line].length + 1;
        line++;
      }
      return new Position(line, offset);
    },
    setText(newText) {
      lines = newText.split("\n");
      doc.version++;
    },
  };
  return doc;
}

function autoNamespace(real) {
  return new Proxy(real, {
    get(target, prop) {
      if (prop in target) return target[prop];
      if (typeof prop !== "string") return undefined;
      if (/^on[A-Z]/.test(prop)) return () => new Disposable();
      if (/^(register|create)[A-Z]/.test(prop)) return () => new Disposable();
      return undefined;
    },
  });
}

/** Build a fresh fake `vscode` module; `settings` is what getConfiguration("hone") returns. */
function createVscode(settings) {
  const events = {
    didOpen: new EventEmitter(),
    didClose: new EventEmitter(),
    didChange: new EventEmitter(),
    didChangeConfiguration: new EventEmitter(),
  };
  const record = { shown: [], inlineProviders: [], commands: {}, channels: [] };
  const textDocuments = [];
  const channel = (name) => record.channels[record.channels.push({
    name,
    logLevel: 2,
    onDidChangeLogLevel: () => new Disposable(),
    lines: [],
    append(v) { this.lines.push(v); },
    appendLine(v) { this.lines.push(v); },
    replace() {},
    clear() {},
    show() {},
    hide() {},
    dispose() {},
    trace(v) { this.lines.push(v); },
    debug(v) { this.lines.push(v); },
    info(v) { this.lines.push(v); },
    warn(v) { this.lines.push(v); },
    error(v) { this.lines.push(String(v)); },
  }) - 1];
  const show = (level) => (message) => {
    record.shown.push({ level, message });
    return Promise.resolve(undefined);
  };
  const matches = (selector, document) => {
    const list = Array.isArray(selector) ? selector : [selector];
    return list.some((s) =>
      typeof s === "string"
        ? s === document.languageId
        : (!s.language || s.language === document.languageId) && (!s.scheme || s.scheme === document.uri.scheme),
    ) ? 10 : 0;
  };
  const vscode = {
    ...extendedClasses,
    __esModule: true, // so TypeScript's __importStar hands out this proxy itself, not a copy
    version: "1.91.0",
    Disposable,
    EventEmitter,
    Position,
    Range,
    Uri,
    CancellationTokenSource,
    CancellationError,
    SnippetString,
    InlineCompletionItem,
    InlineCompletionList,
    InlineCompletionTriggerKind: { Invoke: 0, Automatic: 1 },
    StatusBarAlignment: { Left: 1, Right: 2 },
    LogLevel: { Off: 0, Trace: 1, Debug: 2, Info: 3, Warning: 4, Error: 5 },
    ProgressLocation: { SourceControl: 1, Window: 10, Notification: 15 },
    TextDocumentSaveReason: { Manual: 1, AfterDelay: 2, FocusOut: 3 },
    env: { appName: "fake-vscode", language: "en", machineId: "0", sessionId: "0", openExternal: async () => true },
    workspace: autoNamespace({
      workspaceFolders: undefined,
      textDocuments,
      notebookDocuments: [],
      getConfiguration(section) {
        const values = section === "hone" ? settings : {};
        return {
          get(key, fallback) {
            return Object.prototype.hasOwnProperty.call(values, key) ? values[key] : fallback;
          },
          has: (key) => Object.prototype.hasOwnProperty.call(values, key),
          inspect: () => undefined,
          update: async () => {},
        };
      },
      getWorkspaceFolder: () => undefined,
      onDidOpenTextDocument: events.didOpen.event,
      onDidCloseTextDocument: events.didClose.event,
      onDidChangeTextDocument: events.didChange.event,
      onDidChangeConfiguration: events.didChangeConfiguration.event,
    }),
    window: autoNamespace({
      activeTextEditor: undefined,
      visibleTextEditors: [],
      tabGroups: { all: [], onDidChangeTabs: () => new Disposable() },
      createOutputChannel: (name) => channel(name),
      createStatusBarItem: () => ({ show() {}, hide() {}, dispose() {} }),
      showInformationMessage: show("info"),
      showWarningMessage: show("warning"),
      showErrorMessage: show("error"),
      withProgress: (options, task) => task({ report() {} }, new CancellationTokenSource().token),
    }),
    languages: autoNamespace({
      match: matches,
      registerInlineCompletionItemProvider(selector, provider) {
        const entry = { selector, provider, disposed: false };
        record.inlineProviders.push(entry);
        return new Disposable(() => { entry.disposed = true; });
      },
      createDiagnosticCollection: () => ({ set() {}, delete() {}, clear() {}, dispose() {}, forEach() {} }),
    }),
    commands: autoNamespace({
      registerCommand(id, fn) {
        record.commands[id] = fn;
        return new Disposable(() => delete record.commands[id]);
      },
      executeCommand: async () => undefined,
    }),
    extensions: autoNamespace({ all: [], getExtension: () => undefined }),
  };
  // Other capitalized names (enums like CodeActionKind, rarely used classes) resolve to a
  // constructible placeholder whose members are distinct strings.
  const placeholders = {};
  const placeholder = (name) =>
    (placeholders[name] ??= new Proxy(class {}, {
      get: (target, prop) => (prop in target ? target[prop] : `${name}.${String(prop)}`),
    }));
  const vscodeModule = new Proxy(vscode, {
    get(target, prop) {
      if (prop in target) return target[prop];
      if (typeof prop === "string" && /^[A-Z]/.test(prop)) return placeholder(prop);
      return undefined;
    },
  });
  return {
    vscode: vscodeModule,
    record,
    openDocument(document) {
      textDocuments.push(document);
      events.didOpen.fire(document);
    },
    changeConfiguration(...keys) {
      events.didChangeConfiguration.fire({
        affectsConfiguration: (s) => keys.some((k) => k === s || k.startsWith(s + ".")),
      });
    },
  };
}

module.exports = { createVscode, makeDocument, Position, Uri, CancellationTokenSource };
