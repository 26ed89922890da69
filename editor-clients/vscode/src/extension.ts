// hone for VS Code: a thin client. It starts `hone serve` over stdio (or attaches to a
// running `hone serve --tcp`: ./tcp.ts) and lets vscode-languageclient (>= 10) turn LSP 3.18
// `textDocument/inlineCompletion` into VS Code ghost text. All completion logic lives in the
// server. The server's commands (fix a failing test, localize) get their UI in ./repair.ts.
import * as vscode from "vscode";
import {
  CloseAction,
  DidChangeConfigurationNotification,
  ErrorAction,
  ErrorHandler,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  WorkDoneProgress,
  WorkDoneProgressCancelNotification,
} from "vscode-languageclient/node";
import { FIX_SCHEME, FixContents, ServerLink, handleServerCommand } from "./repair";
import { ATTACH_KEYS, Attach, AttachReport, attachServer, describeAttachFailure, readAttach } from "./tcp";

export const SECTION = "hone";

/** Languages the extension activates for and hands to the server. */
export const LANGUAGES = [
  "python",
  "javascript",
  "javascriptreact",
  "typescript",
  "typescriptreact",
  "go",
  "rust",
];

/**
 * Settings that change how the server process is started: a change restarts it (unless the
 * extension is attached to a running server, which these do not concern).
 */
const LAUNCH_KEYS = ["command", "args", "model"] as const;

/**
 * Settings only the client uses (how to start the server or reach a running one; LSP tracing,
 * which vscode-languageclient reads itself). Every other `hone.*` setting in package.json is a
 * server option, forwarded under its own name.
 */
export const CLIENT_ONLY: readonly string[] = [...LAUNCH_KEYS, ...ATTACH_KEYS, "trace.server"];

/**
 * The server option that lets it run the repository's code (tests, repairs). Not a setting:
 * it is true exactly when the workspace is trusted.
 */
export const TRUST_OPTION = "runCode";

interface Manifest {
  contributes: { configuration: { properties: Record<string, { default?: unknown }> } };
}

// The extension's own package.json (next to out/, and packaged in the .vsix).
// eslint-disable-next-line @typescript-eslint/no-require-imports
const manifest: Manifest = require("../package.json");

/**
 * The server options and their defaults, as contributed in package.json (which mirrors the
 * one definition in server/options.py; tests/server/test_options.py checks that).
 */
export const SERVER_OPTION_DEFAULTS: Readonly<Record<string, unknown>> = Object.fromEntries(
  Object.entries(manifest.contributes.configuration.properties)
    .filter(([key]) => key.startsWith(`${SECTION}.`))
    .map(([key, spec]) => [key.slice(SECTION.length + 1), spec.default] as const)
    .filter(([name]) => !CLIENT_ONLY.includes(name)),
);

/**
 * Settings forwarded to the server (initializationOptions, then didChangeConfiguration as
 * `{ hone: {...} }`): every server option, by its camelCase name, and `runCode` (trust).
 */
export type ServerSettings = Record<string, unknown>;

export interface Launch {
  command: string;
  args: string[];
}

export function readLaunch(config: vscode.WorkspaceConfiguration): Launch {
  const command = config.get<string>("command", "hone") || "hone";
  const args = [...config.get<string[]>("args", ["serve"])];
  const model = (config.get<string>("model", "") || "").trim();
  if (model) {
    args.push("--model", model);
  }
  return { command, args };
}

export function readServerSettings(config: vscode.WorkspaceConfiguration): ServerSettings {
  return {
    ...Object.fromEntries(
      Object.entries(SERVER_OPTION_DEFAULTS).map(([name, fallback]) => [name, config.get(name, fallback)]),
    ),
    [TRUST_OPTION]: vscode.workspace.isTrusted === true,
  };
}

/**
 * The language client. Attached to a running server (`attach`), a start that fails is reported
 * once, by the extension with what to check (doStartClient), not also by the library's own
 * "couldn't create connection to server" notification (still logged to the output channel).
 */
class HoneClient extends LanguageClient {
  /**
   * `attach`: the running server it attaches to (undefined: the extension's own, over stdio);
   * `report`: what the last attempt to attach learned (where the token came from, a refusal).
   */
  constructor(
    serverOptions: ServerOptions,
    clientOptions: LanguageClientOptions,
    readonly attach?: Attach,
    readonly report: AttachReport = {},
  ) {
    super(SECTION, "hone", serverOptions, clientOptions);
  }

  override error(message: string, data?: unknown, showNotification?: boolean | "force"): void {
    const quiet = this.attach !== undefined && this.state !== State.Running;
    super.error(message, data, quiet ? false : showNotification);
  }
}

let client: HoneClient | undefined;
let output: vscode.LogOutputChannel | undefined;
let statusItem: vscode.StatusBarItem | undefined;
/** The current client's start (settled once it runs or failed to start). */
let starting: Promise<void> | undefined;
/** New texts of proposed fixes, shown as read-only `hone-fix:` documents. */
const fixContents = new FixContents();

/** `hone serve` as a child process speaking LSP over its stdio. */
function stdioServer(config: vscode.WorkspaceConfiguration): ServerOptions {
  const launch = readLaunch(config);
  output?.info(`starting: ${launch.command} ${launch.args.join(" ")}`);
  // No `transport`: for an executable that means stdio as well, but TransportKind.stdio
  // would append a `--stdio` argument that `hone serve` does not take.
  return { command: launch.command, args: launch.args };
}

/**
 * The running server stops when its client disconnects and takes one client at a time, so a
 * lost connection is not retried: the user restarts the server, then "hone: Restart language
 * server". A failed start is reported by doStartClient; a lost one is shown here.
 */
function attachedErrorHandler(attach: Attach, running: () => boolean): ErrorHandler {
  return {
    error: (_error, _message, count) => ({
      action: count !== undefined && count <= 3 ? ErrorAction.Continue : ErrorAction.Shutdown,
    }),
    closed: () => {
      const message =
        `the server at ${attach.address} closed the connection (it stops when its client disconnects): ` +
        `start it again, then run "hone: Restart language server".`;
      if (running()) {
        void vscode.window.showErrorMessage(`hone: ${message}`);
      }
      return { action: CloseAction.DoNotRestart, message, handled: true };
    },
  };
}

function createClient(attach: Attach | undefined): HoneClient {
  const config = vscode.workspace.getConfiguration(SECTION);
  const clientOptions: LanguageClientOptions = {
    documentSelector: LANGUAGES.flatMap((language) => [
      { scheme: "file", language },
      { scheme: "untitled", language },
    ]),
    // The token is no option: over TCP it is added to the initialize request on the wire.
    initializationOptions: () => readServerSettings(vscode.workspace.getConfiguration(SECTION)),
    outputChannel: output,
    middleware: {
      // The client registers the server's commands (hone.fixFailingTest, hone.applyFix,
      // hone.localize) as VS Code commands; their UI hooks in here.
      executeCommand: (command, args, next) => handleServerCommand(command, args, link, fixContents, next),
    },
  };
  let serverOptions: ServerOptions;
  const report: AttachReport = {};
  if (attach) {
    output?.info(`attaching to the server at ${attach.address}${attach.tls ? " (TLS)" : ""}`);
    const connect = attachServer(attach, report);
    serverOptions = async () => {
      const transports = await connect();
      output?.info(`connected; the token came from ${report.tokenSource}`);
      return transports;
    };
    // A refused initialize (a wrong token) is final: no second try with the same token.
    clientOptions.initializationFailedHandler = () => false;
    clientOptions.errorHandler = attachedErrorHandler(attach, () => created.state === State.Running);
  } else {
    serverOptions = stdioServer(config);
  }
  const link: ServerLink = {
    send: (command, args, workDoneToken) =>
      created.sendRequest(ExecuteCommandRequest.type, { command, arguments: args, workDoneToken }),
    onProgress: (token, handler) => created.onProgress(WorkDoneProgress.type, token, handler),
    cancel: (token) => void created.sendNotification(WorkDoneProgressCancelNotification.type, { token }),
  };
  const created = new HoneClient(serverOptions, clientOptions, attach, report);
  created.onDidChangeState((event) => updateStatus(event.newState));
  return created;
}

function updateStatus(state: State): void {
  if (!statusItem) {
    return;
  }
  const label = state === State.Running ? "running" : state === State.Starting ? "starting" : "stopped";
  statusItem.text = state === State.Running ? "$(sparkle) hone" : "$(circle-slash) hone";
  statusItem.tooltip = `hone language server: ${label} (click for output)`;
}

async function startClient(): Promise<void> {
  starting = doStartClient();
  await starting;
}

/** Tell the user why the server did not start (also in the output channel). */
function reportStartFailure(message: string): void {
  output?.error(`could not start the hone server: ${message}`);
  void vscode.window.showErrorMessage(`hone: ${message}`);
}

async function doStartClient(): Promise<void> {
  let attach: Attach | undefined;
  try {
    attach = readAttach(vscode.workspace.getConfiguration(SECTION));
  } catch (error) {
    reportStartFailure(error instanceof Error ? error.message : String(error));
    return;
  }
  const created = createClient(attach);
  client = created;
  try {
    await created.start();
  } catch (error) {
    if (attach) {
      reportStartFailure(describeAttachFailure(attach, error, created.report));
      return;
    }
    const message = error instanceof Error ? error.message : String(error);
    output?.error(`could not start the hone server: ${message}`);
    void vscode.window.showErrorMessage(
      `hone: could not start the language server (${message}). Check the "hone.command" setting.`,
    );
  }
}

export async function restartClient(): Promise<void> {
  const previous = client;
  client = undefined;
  if (previous) {
    try {
      await previous.stop();
    } catch (error) {
      output?.warn(`stopping the previous server failed: ${String(error)}`);
    }
  }
  await startClient();
}

/**
 * Send the current server settings, as `{ hone: {...} }`, to a running server (also when the
 * workspace becomes trusted: `runCode` turns true).
 */
export async function pushSettings(): Promise<void> {
  if (!client || !client.isRunning()) {
    return;
  }
  const settings = readServerSettings(vscode.workspace.getConfiguration(SECTION));
  await client.sendNotification(DidChangeConfigurationNotification.type, {
    settings: { [SECTION]: settings },
  });
}

/**
 * Whether a settings change restarts the client: one of where the running server is, or (for
 * the extension's own server) how it is started.
 */
function needsRestart(event: vscode.ConfigurationChangeEvent): boolean {
  const affects = (keys: readonly string[]): boolean =>
    keys.some((key) => event.affectsConfiguration(`${SECTION}.${key}`));
  const attached = (vscode.workspace.getConfiguration(SECTION).get<string>("tcp", "") || "").trim() !== "";
  return affects(ATTACH_KEYS) || (!attached && affects(LAUNCH_KEYS));
}

async function onConfigurationChanged(event: vscode.ConfigurationChangeEvent): Promise<void> {
  if (!event.affectsConfiguration(SECTION)) {
    return;
  }
  if (needsRestart(event)) {
    await restartClient();
  } else {
    await pushSettings();
  }
}

export async function activate(context: vscode.ExtensionContext): Promise<void> {
  output = vscode.window.createOutputChannel("hone", { log: true });
  statusItem = vscode.window.createStatusBarItem(vscode.StatusBarAlignment.Right, 100);
  statusItem.command = "hone.showOutput";
  updateStatus(State.Stopped);
  statusItem.show();
  context.subscriptions.push(
    output,
    statusItem,
    vscode.commands.registerCommand("hone.restart", restartClient),
    vscode.commands.registerCommand("hone.showOutput", () => output?.show()),
    vscode.workspace.onDidChangeConfiguration(onConfigurationChanged),
    // runCode follows trust; a server still starting gets it once it runs.
    vscode.workspace.onDidGrantWorkspaceTrust(async () => {
      await starting;
      await pushSettings();
    }),
    vscode.workspace.registerTextDocumentContentProvider(FIX_SCHEME, fixContents),
  );
  await startClient();
}

export async function deactivate(): Promise<void> {
  const running = client;
  client = undefined;
  if (running) {
    await running.stop();
  }
}
