// "Fix this failing test" and "localize": the VS Code side of the server's commands
// `hone.fixFailingTest`, `hone.applyFix` and `hone.localize` (server/README.md, "Commands").
//
// vscode-languageclient registers the server's commands as VS Code commands itself, so this
// module registers none: the client's `middleware.executeCommand` hands the server's commands
// to `handleServerCommand`, which fills in the test from the active editor, sends the request
// with a work-done token of its own (shown as a cancellable notification: the progress the
// client shows for server-created tokens sits in the status bar and cannot be cancelled), and
// shows the answer (a diff and a modal Apply question, or a quick pick of functions).
import * as vscode from "vscode";

export const FIX_COMMAND = "hone.fixFailingTest";
export const APPLY_COMMAND = "hone.applyFix";
export const LOCALIZE_COMMAND = "hone.localize";
/** Command ids the server registers (executeCommandProvider); the extension must not. */
export const SERVER_COMMANDS: readonly string[] = [FIX_COMMAND, APPLY_COMMAND, LOCALIZE_COMMAND];
/** Scheme of the read-only documents holding a proposed fix's new text. */
export const FIX_SCHEME = "hone-fix";
export const APPLY = "Apply";

export const NO_TEST =
  "hone: open the test file and put the cursor inside the failing test (or use the test's code lens).";

/** `$/progress` values of a work-done token (LSP WorkDoneProgressBegin/Report/End). */
export interface WorkDoneValue {
  kind: "begin" | "report" | "end";
  title?: string;
  message?: string;
  percentage?: number;
  cancellable?: boolean;
}

/** What the commands need of the language client. */
export interface ServerLink {
  /** `workspace/executeCommand`; rejects with the server's error. */
  send(command: string, args: unknown[], workDoneToken?: string): Promise<unknown>;
  /** Listen to `$/progress` on a token. */
  onProgress(token: string, handler: (value: WorkDoneValue) => void): vscode.Disposable;
  /** `window/workDoneProgress/cancel` for a token. */
  cancel(token: string): void;
}

export interface TestArgument {
  testId?: string;
  uri?: string;
  position?: { line: number; character: number };
  confirm?: "server" | "client";
  budgetSeconds?: number;
  [key: string]: unknown;
}

export interface FileChange {
  uri: string;
  path: string;
  text: string;
}

export interface FixResult {
  status?: string;
  test?: string;
  fixed?: boolean;
  explanation?: string;
  diff?: string;
  source?: string;
  fixId?: string | null;
  applied?: boolean;
  message?: string;
  changes?: FileChange[];
  [key: string]: unknown;
}

export interface ApplyResult {
  applied?: boolean;
  message?: string;
}

export interface LocalizedFunction {
  path: string;
  uri?: string;
  name: string;
  start_line: number;
  end_line: number;
  score?: number;
  signals?: unknown;
}

export interface LocalizeResult {
  status?: string;
  test?: string;
  outcome?: unknown;
  message?: string;
  functions?: LocalizedFunction[];
}

export interface FunctionPick extends vscode.QuickPickItem {
  fn: LocalizedFunction;
}

/**
 * The command's argument: what the caller passed (a code lens passes `{testId}`; a string is
 * taken as a test id), else the active Python editor's document and cursor (the command
 * palette passes nothing). Undefined when there is neither.
 */
export function testArgument(args: readonly unknown[]): TestArgument | undefined {
  const first = args[0];
  if (typeof first === "string" && first) {
    return { testId: first };
  }
  if (first && typeof first === "object" && ("testId" in first || "uri" in first)) {
    return { ...(first as TestArgument) };
  }
  const editor = vscode.window.activeTextEditor;
  if (!editor || editor.document.languageId !== "python") {
    return undefined;
  }
  const cursor = editor.selection.active;
  return {
    uri: editor.document.uri.toString(),
    position: { line: cursor.line, character: cursor.character },
  };
}

function keyOf(uri: vscode.Uri): string {
  return `${uri.path}?${uri.query}`;
}

/** Read-only `hone-fix:` documents: the new text of each file a proposed fix changes. */
export class FixContents implements vscode.TextDocumentContentProvider {
  private readonly texts = new Map<string, string>();

  constructor(private readonly keep = 32) {}

  /** Remember a changed file's new text; returns the virtual document's URI. */
  add(fixId: string, change: FileChange): vscode.Uri {
    const path = "/" + change.path.replace(/^\/+/, "");
    const uri = vscode.Uri.from({ scheme: FIX_SCHEME, path, query: `fix=${fixId}` });
    this.texts.delete(keyOf(uri));
    this.texts.set(keyOf(uri), change.text);
    while (this.texts.size > this.keep) {
      this.texts.delete(this.texts.keys().next().value as string);
    }
    return uri;
  }

  provideTextDocumentContent(uri: vscode.Uri): string {
    return this.texts.get(keyOf(uri)) ?? "";
  }
}

function errorMessage(error: unknown): string {
  if (error instanceof Error) return error.message;
  if (error && typeof error === "object" && "message" in error) return String(error.message);
  return String(error);
}

/** Request cancelled (LSP RequestCancelled): the user stopped it; no error to show. */
function isCancellation(error: unknown): boolean {
  const code = error && typeof error === "object" && "code" in error ? error.code : undefined;
  return code === -32800 || (error instanceof Error && error.name === "Canceled");
}

function showError(error: unknown): void {
  if (isCancellation(error)) {
    void vscode.window.showInformationMessage("hone: cancelled.");
    return;
  }
  void vscode.window.showErrorMessage(say(errorMessage(error), "the command failed."));
}

/** A message for the user, "hone: "-prefixed once (the server's messages may carry it). */
function say(text: string | undefined, fallback: string): string {
  return `hone: ${text?.trim().replace(/^hone:\s*/, "") || fallback}`;
}

let progressTokens = 0;

/**
 * Run a server command under a cancellable progress notification fed by the server's
 * `$/progress` on a token of our own; Cancel sends `window/workDoneProgress/cancel`, and the
 * server answers `status: "cancelled"`.
 */
async function withServerProgress<T>(
  link: ServerLink,
  starting: string,
  run: (workDoneToken: string) => Promise<T>,
): Promise<T> {
  return vscode.window.withProgress(
    { location: vscode.ProgressLocation.Notification, title: "hone", cancellable: true },
    async (progress, cancellation) => {
      const token = `hone-${process.pid}-${++progressTokens}`;
      progress.report({ message: starting });
      let stage = "";
      let reported = 0;
      const listening = link.onProgress(token, (value) => {
        if (value.kind === "end") return;
        if (value.kind === "begin" && value.title) stage = value.title.replace(/^hone:\s*/, "");
        const message = [stage, value.message].filter(Boolean).join(": ") || undefined;
        let increment: number | undefined;
        if (typeof value.percentage === "number") {
          increment = Math.max(0, Math.min(value.percentage, 100) - reported);
          reported += increment;
        }
        progress.report({ message, increment });
      });
      const cancelling = cancellation.onCancellationRequested(() => link.cancel(token));
      try {
        return await run(token);
      } finally {
        listening.dispose();
        cancelling.dispose();
      }
    },
  );
}

/** Show the proposed change: side by side for one file, else the unified diff. */
async function showFix(result: FixResult, contents: FixContents): Promise<void> {
  const changes = Array.isArray(result.changes) ? result.changes : [];
  if (changes.length === 1 && result.fixId) {
    const change = changes[0];
    const proposed = contents.add(result.fixId, change);
    const title = `${change.path}: hone's fix for ${result.test ?? "the test"}`;
    await vscode.commands.executeCommand("vscode.diff", vscode.Uri.parse(change.uri), proposed, title, {
      preview: true,
    });
    return;
  }
  if (result.diff) {
    const document = await vscode.workspace.openTextDocument({ language: "diff", content: result.diff });
    await vscode.window.showTextDocument(document, { preview: true });
  }
}

async function fixFailingTest(args: readonly unknown[], link: ServerLink, contents: FixContents): Promise<unknown> {
  const argument = testArgument(args);
  if (!argument) {
    void vscode.window.showErrorMessage(NO_TEST);
    return undefined;
  }
  argument.confirm ??= "client";
  let result: FixResult | undefined;
  try {
    result = (await withServerProgress(link, "fixing the failing test…", (token) =>
      link.send(FIX_COMMAND, [argument], token),
    )) as FixResult | undefined;
  } catch (error) {
    showError(error);
    return undefined;
  }
  if (!result || typeof result !== "object") {
    return result;
  }
  if (argument.confirm !== "client" || result.status !== "fixed" || !result.fixId || result.applied) {
    // Nothing to ask: no fix (not-fixed, passes, cancelled), or the server asked itself.
    const text = say(result.message, `${result.status ?? "no answer"}.`);
    if (result.status === "not-fixed") void vscode.window.showWarningMessage(text);
    else void vscode.window.showInformationMessage(text);
    return result;
  }
  try {
    await showFix(result, contents);
  } catch (error) {
    // The question still makes sense without the view (the detail says what changes).
    void vscode.window.showWarningMessage(`hone: could not show the change (${errorMessage(error)}).`);
  }
  const files = (result.changes ?? []).map((c) => c.path).join(", ");
  const detail = [result.explanation, files ? `Changes: ${files}` : undefined].filter(Boolean).join("\n\n");
  const answer = await vscode.window.showInformationMessage(
    say(result.message, `found a fix for ${result.test ?? "the test"}.`),
    { modal: true, detail },
    APPLY,
  );
  if (answer !== APPLY) {
    return { ...result, applied: false };
  }
  let applied: ApplyResult | undefined;
  try {
    applied = (await link.send(APPLY_COMMAND, [{ fixId: result.fixId }])) as ApplyResult | undefined;
  } catch (error) {
    showError(error);
    return { ...result, applied: false };
  }
  if (applied?.applied) {
    void vscode.window.showInformationMessage(say(applied.message, "applied the fix."));
  } else {
    void vscode.window.showWarningMessage(say(applied?.message, "the fix was not applied."));
  }
  return { ...result, applied: applied?.applied === true, message: applied?.message ?? result.message };
}

function describeSignals(signals: unknown): string {
  if (Array.isArray(signals)) return signals.map(String).join(", ");
  if (signals && typeof signals === "object") {
    return Object.entries(signals)
      .map(([name, value]) => (typeof value === "number" ? `${name} ${+value.toFixed(2)}` : `${name} ${String(value)}`))
      .join(", ");
  }
  return signals === undefined || signals === null ? "" : String(signals);
}

export function functionPicks(functions: readonly LocalizedFunction[]): FunctionPick[] {
  return functions.map((fn) => {
    const score = typeof fn.score === "number" ? `score ${fn.score.toFixed(2)}` : "";
    const signals = describeSignals(fn.signals);
    return {
      label: `$(symbol-function) ${fn.name}`,
      description: `${fn.path}:${fn.start_line}-${fn.end_line}`,
      detail: [score, signals].filter(Boolean).join(" · ") || undefined,
      fn,
    };
  });
}

function functionUri(fn: LocalizedFunction): vscode.Uri {
  if (fn.uri) return vscode.Uri.parse(fn.uri);
  const folder = vscode.workspace.workspaceFolders?.[0];
  return folder ? vscode.Uri.joinPath(folder.uri, fn.path) : vscode.Uri.file(fn.path);
}

async function openFunction(fn: LocalizedFunction): Promise<void> {
  const document = await vscode.workspace.openTextDocument(functionUri(fn));
  const start = new vscode.Position(Math.max(0, fn.start_line - 1), 0);
  await vscode.window.showTextDocument(document, { selection: new vscode.Range(start, start) });
}

async function localize(args: readonly unknown[], link: ServerLink): Promise<unknown> {
  const argument = testArgument(args);
  if (!argument) {
    void vscode.window.showErrorMessage(NO_TEST);
    return undefined;
  }
  let result: LocalizeResult | undefined;
  try {
    result = (await withServerProgress(link, "localizing the failing test…", (token) =>
      link.send(LOCALIZE_COMMAND, [argument], token),
    )) as LocalizeResult | undefined;
  } catch (error) {
    showError(error);
    return undefined;
  }
  const functions = Array.isArray(result?.functions) ? result.functions : [];
  if (functions.length === 0) {
    void vscode.window.showInformationMessage(say(result?.message, "no functions to suggest."));
    return result;
  }
  const picked = await vscode.window.showQuickPick(functionPicks(functions), {
    title: say(result?.message, `functions most likely at fault for ${result?.test ?? "the test"}`),
    placeHolder: "Functions most likely at fault, best first: pick one to open it",
    matchOnDescription: true,
    matchOnDetail: true,
  });
  if (picked) {
    try {
      await openFunction(picked.fn);
    } catch (error) {
      void vscode.window.showErrorMessage(`hone: could not open ${picked.fn.path} (${errorMessage(error)}).`);
    }
  }
  return result;
}

/**
 * The client's `middleware.executeCommand` for the server's commands: `hone.fixFailingTest`
 * and `hone.localize` get their UI here; anything else (`hone.applyFix` included) goes to
 * `next` unchanged.
 */
export function handleServerCommand(
  command: string,
  args: readonly unknown[],
  link: ServerLink,
  contents: FixContents,
  next: (command: string, args: unknown[]) => unknown,
): unknown {
  if (command === FIX_COMMAND) return fixFailingTest(args, link, contents);
  if (command === LOCALIZE_COMMAND) return localize(args, link);
  return next(command, [...args]);
}
