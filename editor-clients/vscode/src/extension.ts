// hone for VS Code: a thin client. It starts `hone serve` over stdio and lets
// vscode-languageclient (>= 10) turn LSP 3.18 `textDocument/inlineCompletion` into
// VS Code ghost text. All completion logic lives in the server. The server's commands
// (fix a failing test, localize) get their UI in ./repair.ts.
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  ExecuteCommandRequest,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
  WorkDoneProgress,
  WorkDoneProgressCancelNotification,
} from "vscode-languageclient/node";
import { FIX_SCHEME, FixContents, ServerLink, handleServerCommand } from "./repair";

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

/** Settings that change how the server process is started: a change restarts it. */
const LAUNCH_KEYS = ["command", "args", "model"] as const;

/**
 * Settings only the client uses (how to start the server; LSP tracing, which
 * vscode-languageclient reads itself). Every other `hone.*` setting in package.json is a
 * server option, forwarded under its own name.
 */
export const CLIENT_ONLY: readonly string[] = [...LAUNCH_KEYS, "trace.server"];

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

let client: LanguageClient | undefined;
let output: vscode.LogOutputChannel | undefined;
let statusItem: vscode.StatusBarItem | undefined;
/** The current client's start (settled once it runs or failed to start). */
let starting: Promise<void> | undefined;
/** New texts of proposed fixes, shown as read-only `hone-fix:` documents. */
const fixContents = new FixContents();

function createClient(): LanguageClient {
  const config = vscode.workspace.getConfiguration(SECTION);
  const launch = readLaunch(config);
  // No `transport`: for an executable that means stdio as well, but TransportKind.stdio
  // would append a `--stdio` argument that `hone serve` does not take.
  const serverOptions: ServerOptions = { command: launch.command, args: launch.args };
  const clientOptions: LanguageClientOptions = {
    documentSelector: LANGUAGES.flatMap((language) => [
      { scheme: "file", language },
      { scheme: "untitled", language },
    ]),
    initializationOptions: () => readServerSettings(vscode.workspace.getConfiguration(SECTION)),
    outputChannel: output,
    middleware: {
      // The client registers the server's commands (hone.fixFailingTest, hone.applyFix,
      // hone.localize) as VS Code commands; their UI hooks in here.
      executeCommand: (command, args, next) => handleServerCommand(command, args, link, fixContents, next),
    },
  };
  const link: ServerLink = {
    send: (command, args, workDoneToken) =>
      created.sendRequest(ExecuteCommandRequest.type, { command, arguments: args, workDoneToken }),
    onProgress: (token, handler) => created.onProgress(WorkDoneProgress.type, token, handler),
    cancel: (token) => void created.sendNotification(WorkDoneProgressCancelNotification.type, { token }),
  };
  output?.info(`starting: ${launch.command} ${launch.args.join(" ")}`);
  const created: LanguageClient = new LanguageClient(SECTION, "hone", serverOptions, clientOptions);
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

async function doStartClient(): Promise<void> {
  client = createClient();
  try {
    await client.start();
  } catch (error) {
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

async function onConfigurationChanged(event: vscode.ConfigurationChangeEvent): Promise<void> {
  if (!event.affectsConfiguration(SECTION)) {
    return;
  }
  if (LAUNCH_KEYS.some((key) => event.affectsConfiguration(`${SECTION}.${key}`))) {
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
