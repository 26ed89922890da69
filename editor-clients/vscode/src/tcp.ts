// Attaching to a running `hone serve --tcp HOST:PORT` (the `hone.tcp` setting) instead of
// starting a server over stdio.
//
// The listener (server/transport.py) serves one client at a time, and that client's first
// message must be the `initialize` request carrying the server's secret as
// `initializationOptions.token`; anything else gets a JSON-RPC error (-32001) and a closed
// connection. So the extension
//   - reads the token each time it connects: `hone.tokenFile`, else `$HONE_TOKEN`, else the
//     file the server writes a generated token to (defaultTokenPath);
//   - adds it to the `initialize` request as that request is written to the socket
//     (tokenWriter): the token is in no setting, no LanguageClient option and no message. The
//     client traces requests before they reach the writer, so `hone.trace.server: verbose`
//     shows the initialize params without it;
//   - connects with TLS when `hone.tls` is on, trusting `hone.tlsCaFile` (a self-signed
//     certificate) or else the system's trust store;
//   - notes the server's refusal as it arrives (refusalWatcher), so the user sees the server's
//     words even when the client handles the closed connection first; a refused or lost
//     connection is not retried (the extension's ErrorHandler and initializationFailedHandler).
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import * as tls from "tls";
import type * as vscode from "vscode";
import {
  Message,
  MessageReader,
  MessageTransports,
  MessageWriter,
  RequestMessage,
  ResponseMessage,
  StreamMessageReader,
  StreamMessageWriter,
} from "vscode-languageclient/node";

/** The settings that say where a running server is and how to reach it. */
export const ATTACH_KEYS = ["tcp", "tokenFile", "tls", "tlsCaFile"] as const;

/** The JSON-RPC error code of the server's refusal (a missing or wrong token). */
export const AUTH_ERROR = -32001;

/**
 * vscode-jsonrpc's error codes for a request on a connection the server closed before
 * answering: PendingResponseRejected (closed while waiting), MessageWriteError (closed while
 * the client still wrote: EPIPE, ECONNRESET).
 */
const CLOSED: readonly unknown[] = [-32097, -32099];

/** How long connecting (and the TLS handshake) may take. */
export const CONNECT_TIMEOUT_MS = 10_000;

/** A running server to attach to, from the settings. */
export interface Attach {
  /** `hone.tcp` as written (for messages). */
  address: string;
  host: string;
  port: number;
  /** `hone.tokenFile`; "" looks at `$HONE_TOKEN`, then at defaultTokenPath(port). */
  tokenFile: string;
  tls: boolean;
  /** `hone.tlsCaFile`; "" trusts the system's certificate authorities. */
  caFile: string;
}

/** The secret and where it came from; `source` never contains the secret (it is shown). */
export interface Token {
  secret: string;
  source: string;
}

/** What one attempt to attach learned, for the message when it fails (never the token). */
export interface AttachReport {
  /** Where the token sent came from. */
  tokenSource?: string;
  /** The server's refusal (its error answer to initialize). */
  refusal?: string;
}

/** Attaching failed for a reason the message states (shown to the user as it is). */
export class AttachError extends Error {}

/** `{host, port}` of "HOST:PORT" (`[::1]:2087` for IPv6), or undefined when malformed. */
export function parseAddress(value: string): { host: string; port: number } | undefined {
  const match = /^\[([^\]\s]+)\]:(\d{1,5})$/.exec(value) ?? /^([^:\s[\]]+):(\d{1,5})$/.exec(value);
  const port = match ? Number(match[2]) : 0;
  return match && port >= 1 && port <= 65535 ? { host: match[1], port } : undefined;
}

/**
 * The running server the settings name, or undefined when `hone.tcp` is empty (the extension
 * starts its own server over stdio). Throws AttachError for a malformed address.
 */
export function readAttach(config: vscode.WorkspaceConfiguration): Attach | undefined {
  const address = (config.get<string>("tcp", "") || "").trim();
  if (!address) {
    return undefined;
  }
  const parsed = parseAddress(address);
  if (!parsed) {
    throw new AttachError(
      `"hone.tcp" must be HOST:PORT of a running \`hone serve --tcp\` (e.g. 127.0.0.1:2087, ` +
        `[::1]:2087), not "${address}"; empty starts the extension's own server.`,
    );
  }
  return {
    address,
    ...parsed,
    tokenFile: (config.get<string>("tokenFile", "") || "").trim(),
    tls: config.get<boolean>("tls", false) === true,
    caFile: (config.get<string>("tlsCaFile", "") || "").trim(),
  };
}

/** `~` and `~/...` as the user's home folder. */
function expandHome(file: string): string {
  return file === "~" || file.startsWith("~/") ? path.join(os.homedir(), file.slice(1)) : file;
}

/**
 * The file `hone serve --tcp HOST:PORT` writes a generated token to (on its own machine):
 * `$XDG_RUNTIME_DIR/hone/tcp-PORT.token`, else `~/.local/state/hone/tcp-PORT.token`.
 */
export function defaultTokenPath(port: number, env: NodeJS.ProcessEnv = process.env): string {
  const base = env.XDG_RUNTIME_DIR;
  const folder = base ? path.join(base, "hone") : path.join(os.homedir(), ".local", "state", "hone");
  return path.join(folder, `tcp-${port}.token`);
}

/** The trimmed contents of `file`, or why there is no token in it (never the contents). */
function readTokenFile(file: string): { secret: string } | { why: string } {
  let text: string;
  try {
    text = fs.readFileSync(file, "utf8");
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return { why: code === "ENOENT" ? "does not exist" : `cannot be read (${code ?? String(error)})` };
  }
  const secret = text.trim();
  return secret ? { secret } : { why: "is empty" };
}

/**
 * The token for `attach`: `hone.tokenFile`, else `$HONE_TOKEN` (VS Code's environment), else
 * the server's default token file for the port. Throws AttachError saying where it looked.
 */
export function findToken(attach: Attach, env: NodeJS.ProcessEnv = process.env): Token {
  if (attach.tokenFile) {
    const file = expandHome(attach.tokenFile);
    const read = readTokenFile(file);
    if ("why" in read) {
      throw new AttachError(`no token for the server at ${attach.address}: "hone.tokenFile" ${file} ${read.why}.`);
    }
    return { secret: read.secret, source: `"hone.tokenFile" (${file})` };
  }
  const fromEnv = (env.HONE_TOKEN ?? "").trim();
  if (fromEnv) {
    return { secret: fromEnv, source: "the HONE_TOKEN environment variable" };
  }
  const file = defaultTokenPath(attach.port, env);
  const read = readTokenFile(file);
  if ("why" in read) {
    throw new AttachError(
      `no token for the server at ${attach.address}: "hone.tokenFile" is not set, HONE_TOKEN is not ` +
        `set in VS Code's environment, and ${file} ${read.why}. Set "hone.tokenFile" to the file ` +
        `holding the server's token (\`hone serve --tcp\` prints where it is).`,
    );
  }
  return { secret: read.secret, source: file };
}

/** What to say when connecting to `attach` failed with `error`. */
function connectFailure(attach: Attach, error: NodeJS.ErrnoException): string {
  const where = `the hone server at ${attach.address}`;
  const code = error.code ?? "";
  if (code === "ECONNREFUSED") {
    return `nothing listens at ${attach.address}: start \`hone serve --tcp ${attach.address}\` there, or fix "hone.tcp".`;
  }
  if (code === "ENOTFOUND" || code === "EAI_AGAIN") {
    return `cannot find the host "${attach.host}" of "hone.tcp" (${attach.address}).`;
  }
  if (code === "ETIMEDOUT") {
    return `no answer from ${where} within ${CONNECT_TIMEOUT_MS / 1000} s.`;
  }
  if (attach.tls && /CERT|SELF_SIGNED|UNABLE_TO|ALTNAME/.test(code)) {
    return (
      `cannot trust the TLS certificate of ${where} (${error.message}): for a self-signed ` +
      `certificate, set "hone.tlsCaFile" to it (its names must include "${attach.host}").`
    );
  }
  if (attach.tls && (code === "ECONNRESET" || /TLS|SSL/i.test(error.message))) {
    return `the TLS handshake with ${where} failed (${error.message}): does it run with --tls-cert? If not, turn "hone.tls" off.`;
  }
  return `cannot connect to ${where}: ${error.message}.`;
}

/** TLS options for `attach`: SNI by host name, and the CA file when one is set. */
function tlsOptions(attach: Attach): tls.ConnectionOptions {
  let ca: Buffer | undefined;
  if (attach.caFile) {
    const file = expandHome(attach.caFile);
    try {
      ca = fs.readFileSync(file);
    } catch (error) {
      throw new AttachError(`cannot read "hone.tlsCaFile" ${file}: ${(error as NodeJS.ErrnoException).code ?? String(error)}.`);
    }
  }
  // SNI takes host names only; an IP address is checked against the certificate's IP names.
  return { host: attach.host, port: attach.port, servername: net.isIP(attach.host) ? undefined : attach.host, ca };
}

/** A socket connected to `attach` (TLS established when `hone.tls`), or AttachError. */
export function openSocket(attach: Attach, timeoutMs: number = CONNECT_TIMEOUT_MS): Promise<net.Socket> {
  const options = attach.tls ? tlsOptions(attach) : undefined;
  return new Promise((resolve, reject) => {
    const socket = options ? tls.connect(options) : net.connect({ host: attach.host, port: attach.port });
    const fail = (error: NodeJS.ErrnoException): void => {
      socket.destroy();
      reject(new AttachError(connectFailure(attach, error)));
    };
    socket.setTimeout(timeoutMs, () => fail(Object.assign(new Error("timed out"), { code: "ETIMEDOUT" })));
    socket.once("error", fail);
    socket.once(options ? "secureConnect" : "connect", () => {
      socket.setTimeout(0);
      socket.removeListener("error", fail);
      resolve(socket);
    });
  });
}

function isInitialize(message: Message): message is RequestMessage {
  return (message as RequestMessage).method === "initialize" && "id" in message;
}

/** `message` with `token` added to its initializationOptions when it is the initialize request. */
export function addToken(message: Message, token: string): Message {
  if (!isInitialize(message)) {
    return message;
  }
  const params = (message.params ?? {}) as Record<string, unknown>;
  const options = params.initializationOptions;
  const withToken = { ...(options && typeof options === "object" ? options : {}), token };
  return { ...message, params: { ...params, initializationOptions: withToken } } as RequestMessage;
}

/**
 * A writer that adds the token to the initialize request (a copy: the client keeps the
 * message it traced), and reports write errors without the message it was writing.
 */
export function tokenWriter(inner: MessageWriter, token: string): MessageWriter {
  return {
    onError: (listener, thisArgs, disposables) =>
      inner.onError(([error, , count]) => listener.call(thisArgs, [error, undefined, count]), undefined, disposables),
    onClose: inner.onClose,
    write: (message) => inner.write(addToken(message, token)),
    end: () => inner.end(),
    dispose: () => inner.dispose(),
  };
}

/**
 * A reader that notes the server's refusal as the message arrives. The server closes the
 * connection right after it, and the client may handle the close first (failing the pending
 * initialize with "connection got disposed" instead of the server's words).
 */
export function refusalWatcher(inner: MessageReader, report: AttachReport): MessageReader {
  const note = (message: Message): void => {
    const error = (message as ResponseMessage).error;
    if (error && error.code === AUTH_ERROR && report.refusal === undefined) {
      report.refusal = String(error.message);
    }
  };
  return {
    onError: inner.onError,
    onClose: inner.onClose,
    onPartialMessage: inner.onPartialMessage,
    listen: (callback) =>
      inner.listen((message) => {
        note(message);
        callback(message);
      }),
    dispose: () => inner.dispose(),
  };
}

/**
 * The LanguageClient's serverOptions for `attach`: each start reads the token, connects, and
 * hands over the socket's transports (the initialize request gets the token on its way out).
 * `report` (reset at each start) learns where the token came from and the server's refusal.
 */
export function attachServer(attach: Attach, report: AttachReport): () => Promise<MessageTransports> {
  return async () => {
    delete report.tokenSource;
    delete report.refusal;
    const token = findToken(attach);
    report.tokenSource = token.source;
    const socket = await openSocket(attach);
    return {
      reader: refusalWatcher(new StreamMessageReader(socket), report),
      writer: tokenWriter(new StreamMessageWriter(socket), token.secret),
    };
  };
}

/** What to tell the user when starting a client attached to `attach` failed with `error`. */
export function describeAttachFailure(attach: Attach, error: unknown, report: AttachReport): string {
  if (error instanceof AttachError) {
    return error.message;
  }
  const refused = (error as { code?: unknown } | undefined)?.code === AUTH_ERROR;
  const message = error instanceof Error ? error.message : String(error);
  if (report.refusal !== undefined || refused) {
    return (
      `could not attach to the server at ${attach.address}: ${report.refusal ?? message} The token sent ` +
      `came from ${report.tokenSource ?? "nowhere"}: it must be the one that server uses.`
    );
  }
  const code = (error as { code?: unknown } | undefined)?.code;
  const what = CLOSED.includes(code) ? "it closed the connection without answering" : message;
  return (
    `could not attach to the server at ${attach.address}: ${what} (it serves one client at a time and ` +
    `stops when its client disconnects; "hone.tls" must say whether it runs with --tls-cert).`
  );
}
