// hone for VS Code: a thin client. It starts `hone serve` over stdio and lets
// vscode-languageclient (>= 10) turn LSP 3.18 `textDocument/inlineCompletion` into
// VS Code ghost text. All completion logic lives in the server.
import * as vscode from "vscode";
import {
  DidChangeConfigurationNotification,
  LanguageClient,
  LanguageClientOptions,
  ServerOptions,
  State,
} from "vscode-languageclient/node";

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
 * Settings forwarded to the server (initializationOptions, then didChangeConfiguration as
 * `{ hone: {...} }`). The defaults mirror the server's own (server/options.py).
 */
export interface ServerSettings {
  maxNewTokens: number;
  multiline: boolean;
  debounceMs: number;
}

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
    maxNewTokens: config.get<number>("maxNewTokens", 96),
    multiline: config.get<boolean>("multiline", true),
    debounceMs: config.get<number>("debounceMs", 60),
  };
}

let client: LanguageClient | undefined;
let output: vscode.LogOutputChannel | undefined;
let statusItem: vscode.StatusBarItem | undefined;

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
  };
  output?.info(`starting: ${launch.command} ${launch.args.join(" ")}`);
  const created = new LanguageClient(SECTION, "hone", serverOptions, clientOptions);
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

/** Send the current server settings, as `{ hone: {...} }`, to a running server. */
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
