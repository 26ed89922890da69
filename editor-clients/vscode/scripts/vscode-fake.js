// A small in-memory stand-in for the `vscode` API: enough of it for vscode-languageclient to
// start a real server, sync documents and register providers, so scripts/check.js can drive
// the real client library without a VS Code window. Unknown `onX` members are events that never
// fire, unknown `registerX`/`createX` members return disposables; everything else is undefined.
// For the repair commands it also has workspace trust, workspace edits (applied to the open
// documents, as VS Code applies them), code lens providers, text document content providers,
// and a window whose modal questions and quick picks are answered by the test (`fake.answers`).
"use strict";
const fs = require("node:fs");

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
  static from(c) {
    return new Uri(c.scheme, c.authority ?? "", c.path ?? "", c.query ?? "", c.fragment ?? "");
  }
  static joinPath(base, ...parts) {
    return base.with({ path: [base.path.replace(/\/+$/, ""), ...parts].join("/") });
  }
  toString() {
    if (this.scheme === "file") return "file://" + encodeURI(this.path);
    return `${this.scheme}:${this.path}${this.query ? "?" + this.query : ""}${this.fragment ? "#" + this.fragment : ""}`;
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
// Base classes the client library extends at load time; never instantiated in these checks
// (but CodeLens, below).
class Plain {}
const extendedClasses = Object.fromEntries(
  ["CallHierarchyItem", "CompletionItem", "DocumentLink", "InlayHint", "SymbolInformation", "TypeHierarchyItem", "CodeAction", "Diagnostic"].map(
    (name) => [name, class extends Plain {}],
  ),
);
class CodeLens {
  constructor(range, command) {
    this.range = range;
    this.command = command;
  }
  get isResolved() {
    return !!this.command;
  }
}
class TextEdit {
  constructor(range, newText) {
    this.range = range;
    this.newText = newText;
  }
}
/** What vscode-languageclient builds from a `workspace/applyEdit` (text edits only). */
class WorkspaceEdit {
  constructor() {
    this._entries = [];
  }
  set(uri, edits) {
    this._entries = this._entries.filter(([u]) => u.toString() !== uri.toString());
    this._entries.push([uri, (edits || []).map((e) => (Array.isArray(e) ? e[0] : e))]);
  }
  replace(uri, range, newText) {
    const entry = this._entries.find(([u]) => u.toString() === uri.toString());
    if (entry) entry[1].push(new TextEdit(range, newText));
    else this._entries.push([uri, [new TextEdit(range, newText)]]);
  }
  entries() {
    return this._entries;
  }
  get size() {
    return this._entries.length;
  }
  createFile() {
    throw new Error("the fake WorkspaceEdit has text edits only");
  }
  renameFile() {
    throw new Error("the fake WorkspaceEdit has text edits only");
  }
  deleteFile() {
    throw new Error("the fake WorkspaceEdit has text edits only");
  }
}
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

/**
 * Build a fresh fake `vscode` module; `settings` is what getConfiguration("hone") returns.
 * `options.trusted`: workspace trust (default true, as in a trusted folder);
 * `options.workspaceFolders`: paths of the workspace folders.
 */
function createVscode(settings, options = {}) {
  const events = {
    didOpen: new EventEmitter(),
    didClose: new EventEmitter(),
    didChange: new EventEmitter(),
    didChangeConfiguration: new EventEmitter(),
    didGrantTrust: new EventEmitter(),
  };
  const record = {
    shown: [], // non-modal messages: {level, message}
    modals: [], // modal questions: {message, options, items, answer}
    quickPicks: [], // {items, options, picked}
    inlineProviders: [],
    codeLensProviders: [],
    contentProviders: {},
    commands: {},
    executed: [], // vscode.commands.executeCommand calls of commands nobody registered
    shownDocuments: [], // showTextDocument: {document, options}
    appliedEdits: [], // workspace.applyEdit: [{uri, edits: [{range, newText}]}]
    progress: [], // window.withProgress: {options, reports, cancel()}
    channels: [],
  };
  // The test's answers: modal(message, options, items) -> item or undefined (Cancel);
  // quickPick(items, options) -> item or undefined.
  const answers = { modal: () => undefined, quickPick: (items) => items[0] };
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
  const show = (level) => (message, ...rest) => {
    const first = rest[0];
    if (first && typeof first === "object" && !Array.isArray(first) && first.modal) {
      const items = rest.slice(1);
      const entry = { level, message, options: first, items, answer: answers.modal(message, first, items) };
      record.modals.push(entry);
      return Promise.resolve(entry.answer);
    }
    record.shown.push({ level, message });
    return Promise.resolve(undefined);
  };
  const findDocument = (uri) => textDocuments.find((d) => d.uri.toString() === uri.toString());
  const openDocument = (document) => {
    textDocuments.push(document);
    events.didOpen.fire(document);
    return document;
  };
  const languageOf = (p) => (p.endsWith(".py") ? "python" : "plaintext");
  // Apply text edits to a document the way VS Code does (all ranges refer to the old text),
  // and tell listeners (the language client syncs the change to the server).
  const applyTextEdits = (document, edits) => {
    const old = document.getText();
    const sorted = edits
      .map((e) => ({ e, start: document.offsetAt(e.range.start), end: document.offsetAt(e.range.end) }))
      .sort((a, b) => b.start - a.start);
    let text = old;
    for (const { e, start, end } of sorted) text = text.slice(0, start) + e.newText + text.slice(end);
    const lastLine = document.lineCount - 1;
    const fullRange = new Range(0, 0, lastLine, document.lineAt(lastLine).text.length);
    document.setText(text);
    document.isDirty = true;
    events.didChange.fire({
      document,
      contentChanges: [{ range: fullRange, rangeOffset: 0, rangeLength: old.length, text }],
      reason: undefined,
    });
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
    WorkspaceEdit,
    TextEdit,
    CodeLens,
    workspace: autoNamespace({
      isTrusted: options.trusted !== false,
      onDidGrantWorkspaceTrust: events.didGrantTrust.event,
      workspaceFolders: options.workspaceFolders
        ? options.workspaceFolders.map((p, index) => ({ uri: Uri.file(p), name: p.split("/").pop(), index }))
        : undefined,
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
      getWorkspaceFolder: (uri) =>
        (vscode.workspace.workspaceFolders || []).find((f) => uri.path === f.uri.path || uri.path.startsWith(f.uri.path + "/")),
      createFileSystemWatcher: () => ({
        onDidCreate: () => new Disposable(),
        onDidChange: () => new Disposable(),
        onDidDelete: () => new Disposable(),
        dispose() {},
      }),
      registerTextDocumentContentProvider(scheme, provider) {
        if (record.contentProviders[scheme]) throw new Error(`a provider for ${scheme}: exists`);
        record.contentProviders[scheme] = provider;
        return new Disposable(() => delete record.contentProviders[scheme]);
      },
      async openTextDocument(what) {
        if (what instanceof Uri) {
          const open = findDocument(what);
          if (open) return open;
          if (what.scheme === "file") {
            return openDocument(makeDocument(what, languageOf(what.path), fs.readFileSync(what.fsPath, "utf8")));
          }
          const provider = record.contentProviders[what.scheme];
          if (!provider) throw new Error(`cannot open ${what}`);
          return makeDocument(what, languageOf(what.path), await provider.provideTextDocumentContent(what));
        }
        const uri = new Uri("untitled", "", `Untitled-${textDocuments.length + 1}`, "", "");
        const document = makeDocument(uri, (what && what.language) || "plaintext", (what && what.content) || "");
        document.isUntitled = true;
        return openDocument(document);
      },
      async applyEdit(edit) {
        const entries = edit.entries().map(([uri, edits]) => ({ uri, edits }));
        record.appliedEdits.push(entries);
        for (const { uri, edits } of entries) {
          const document = findDocument(uri) ?? (await vscode.workspace.openTextDocument(uri));
          applyTextEdits(document, edits);
        }
        return true;
      },
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
      showQuickPick(items, pickOptions) {
        return Promise.resolve(items).then((list) => {
          const picked = answers.quickPick(list, pickOptions);
          record.quickPicks.push({ items: list, options: pickOptions, picked });
          return picked;
        });
      },
      async showTextDocument(document, showOptions) {
        record.shownDocuments.push({ document, options: showOptions });
        return { document, selection: showOptions && showOptions.selection };
      },
      withProgress(progressOptions, task) {
        const source = new CancellationTokenSource();
        const entry = { options: progressOptions, reports: [], cancel: () => source.cancel() };
        record.progress.push(entry);
        return task({ report: (value) => entry.reports.push(value) }, source.token);
      },
    }),
    languages: autoNamespace({
      match: matches,
      registerCodeLensProvider(selector, provider) {
        const entry = { selector, provider, disposed: false };
        record.codeLensProviders.push(entry);
        return new Disposable(() => { entry.disposed = true; });
      },
      registerInlineCompletionItemProvider(selector, provider) {
        const entry = { selector, provider, disposed: false };
        record.inlineProviders.push(entry);
        return new Disposable(() => { entry.disposed = true; });
      },
      createDiagnosticCollection: () => ({ set() {}, delete() {}, clear() {}, dispose() {}, forEach() {} }),
    }),
    commands: autoNamespace({
      registerCommand(id, fn) {
        // As in VS Code: one command id, one handler.
        if (record.commands[id]) throw new Error(`command '${id}' already exists`);
        record.commands[id] = fn;
        return new Disposable(() => delete record.commands[id]);
      },
      async executeCommand(id, ...args) {
        if (record.commands[id]) return record.commands[id](...args);
        record.executed.push({ id, args });
        return undefined;
      },
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
    answers,
    openDocument,
    /** Open the file at `p` as a text document, or return the open one. */
    async open(p) {
      return vscode.workspace.openTextDocument(Uri.file(p));
    },
    /** Make `document` the active editor with the cursor at (line, character). */
    setActiveEditor(document, line, character) {
      const position = new Position(line, character);
      vscode.window.activeTextEditor = document
        ? { document, selection: { active: position, anchor: position, start: position, end: position } }
        : undefined;
    },
    grantTrust() {
      vscode.workspace.isTrusted = true;
      events.didGrantTrust.fire();
    },
    changeConfiguration(...keys) {
      events.didChangeConfiguration.fire({
        affectsConfiguration: (s) => keys.some((k) => k === s || k.startsWith(s + ".")),
      });
    },
  };
}

module.exports = { createVscode, makeDocument, Position, Range, Uri, CancellationTokenSource };
