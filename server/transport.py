"""The TCP listener: one authenticated client at a time, LSP framing only, TLS where it leaves
loopback.

Anything that can reach a TCP port can try it: another local user's process, a web page
(a browser lets a page open connections to ``127.0.0.1``), a host on the network. An LSP
connection to hone can run the repository's tests, so the listener (:class:`TcpListener`)

- reads each new connection's first message itself, before the language server sees a
  byte of it: LSP framing (``Content-Length``/``Content-Type`` headers, then a JSON body
  of bounded size, within :data:`HANDSHAKE_TIMEOUT_S`) holding the ``initialize``
  request, whose ``initializationOptions.token`` must equal the server's secret (compared
  with :func:`hmac.compare_digest`). Anything else is closed: an HTTP request from a web
  page at its first line, a wrong or missing token after an error response. The reason is
  logged at WARNING with the peer's address, never the secret or what was sent;
- serves one client at a time: a connection made while a client is attached is closed at
  once (so is one that authenticates second), and a refused connection never touches the
  server's state (pygls' own TCP mode gives every connection the one protocol: a second
  connection took over the replies and its disconnect stopped the server);
- hands the authenticated first message on with the token taken out, so nothing after
  this module (options, -vv message logs) ever holds it;
- stops the server when its client disconnects, as stdio does when the editor goes away.

TLS (:func:`tls_context`) comes from certificate and key files; the CLI requires it for a
non-loopback address unless the user says the network is trusted. The secret
(:func:`resolve_token`): ``--token-file PATH`` (owner-only permissions), else
``HONE_TOKEN``, else one generated and written to an owner-only file whose path is
printed (as notebook servers do).
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import re
import secrets
import ssl
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("hone.server.transport")

__all__ = [
    "AUTH_ERROR",
    "MIN_TOKEN_CHARS",
    "Refused",
    "TcpListener",
    "Token",
    "TokenError",
    "default_token_path",
    "read_first_message",
    "resolve_token",
    "tls_context",
]

HANDSHAKE_TIMEOUT_S = 10.0  # to send the first message (and finish TLS)
MAX_HEADER_LINE = 1024
MAX_HEADERS = 8
MAX_FIRST_BODY = 4 << 20  # an initialize request with its capabilities is a few tens of kB
MIN_TOKEN_CHARS = 16
AUTH_ERROR = -32001  # JSON-RPC: a server-defined error ("unauthorized")
_HEADER = re.compile(rb"(content-length|content-type): *([^\r\n]*)\r\n", re.IGNORECASE)
_NAMES = (b"content-length:", b"content-type:")


class TokenError(Exception):
    """The secret cannot be read or made (the message says why and what to do)."""


class Refused(Exception):
    """A connection closed before it reached the server; the message is the logged reason."""


@dataclass(frozen=True)
class Token:
    secret: str
    source: str  # "--token-file", "HONE_TOKEN" or "generated"
    path: Path | None = None  # the file holding it (given or generated)
    generated: bool = False  # hone wrote ``path`` and removes it when it stops


# -- the secret --------------------------------------------------------------------------


def runtime_dir() -> Path:
    """Where generated secrets go: ``$XDG_RUNTIME_DIR/hone`` (per user, in memory, removed at
    logout), else ``~/.local/state/hone``; created owner-only."""
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(base) / "hone" if base else Path.home() / ".local" / "state" / "hone"
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.stat()
    if info.st_uid != os.getuid():
        raise TokenError(f"{folder} belongs to another user; set HONE_TOKEN or --token-file")
    if stat.S_IMODE(info.st_mode) & 0o077:
        os.chmod(folder, 0o700)
    return folder


def default_token_path(port: int) -> Path:
    """The file a generated secret for ``port`` is written to (editor clients read it)."""
    return runtime_dir() / f"tcp-{port}.token"


def _check_secret(secret: str, where: str) -> str:
    secret = secret.strip()
    if len(secret) < MIN_TOKEN_CHARS:
        raise TokenError(
            f"the token from {where} is too short ({len(secret)} characters, at least "
            f"{MIN_TOKEN_CHARS}): use a long random one, e.g. `openssl rand -hex 32`"
        )
    if any(c.isspace() or not c.isprintable() for c in secret):
        raise TokenError(f"the token from {where} has spaces or control characters")
    return secret


def read_token_file(path: Path) -> str:
    """The secret in ``path``, which must be a regular file of this user's, owner-only."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError as exc:
        raise TokenError(f"cannot read the token file {path}: {exc.strerror}") from exc
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise TokenError(f"the token file {path} is not a regular file")
        if info.st_uid != os.getuid():
            raise TokenError(f"the token file {path} belongs to another user")
        if stat.S_IMODE(info.st_mode) & 0o077:
            raise TokenError(
                f"the token file {path} can be read by others "
                f"(mode {stat.S_IMODE(info.st_mode):o}): chmod 600 {path}"
            )
        data = os.read(fd, 4096)
    finally:
        os.close(fd)
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise TokenError(f"the token file {path} is not ASCII text") from exc
    return _check_secret(text, str(path))


def write_token_file(path: Path, secret: str) -> None:
    """Write ``secret`` to ``path``, owner-only, replacing a file (never following a link)."""
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (secret + "\n").encode("ascii"))
    finally:
        os.close(fd)


def resolve_token(
    token_file: str | None, port: int, environ: dict[str, str] | None = None
) -> Token:
    """The listener's secret: ``--token-file``, else ``HONE_TOKEN``, else a generated one
    written to :func:`default_token_path`."""
    environ = os.environ if environ is None else environ
    if token_file:
        path = Path(token_file).expanduser()
        return Token(read_token_file(path), "--token-file", path)
    if environ.get("HONE_TOKEN"):
        return Token(_check_secret(environ["HONE_TOKEN"], "HONE_TOKEN"), "HONE_TOKEN")
    secret = secrets.token_urlsafe(32)
    path = default_token_path(port)
    try:
        write_token_file(path, secret)
    except OSError as exc:
        raise TokenError(f"cannot write the token file {path}: {exc.strerror}") from exc
    return Token(secret, "generated", path, generated=True)


def tls_context(cert: str, key: str) -> ssl.SSLContext:
    """A server-side TLS context (TLS 1.2 or later) from PEM certificate and key files."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as exc:
        raise TokenError(f"cannot load the TLS certificate {cert} and key {key}: {exc}") from exc
    return context


# -- the first message -------------------------------------------------------------------


def _may_become_header(line: bytes) -> bool:
    """Whether ``line`` (a header line so far, without its end) can still become one that
    LSP framing allows: a web page's ``GET / HTTP/1.1`` fails at its first byte."""
    lowered = line[:15].lower()
    return any(name.startswith(lowered) or lowered.startswith(name) for name in _NAMES)


async def read_first_message(reader: asyncio.StreamReader) -> tuple[dict[str, Any], bytes]:
    """The connection's first LSP message and the bytes read after it, or :class:`Refused`
    (not LSP framing, too big, not JSON, the connection closed). Input is checked as it
    arrives: a line that cannot be a header is refused before its end comes."""
    buffer = b""
    while b"\r\n\r\n" not in buffer:
        chunk = await reader.read(4096)
        if not chunk:
            raise Refused("closed before sending a message")
        buffer += chunk
        *lines, tail = buffer.split(b"\r\n")
        if len(lines) > MAX_HEADERS + 1:
            raise Refused("not LSP framing (too many header lines)")
        for line in [*lines, tail] if tail else lines:
            if not line:
                break
            if len(line) > MAX_HEADER_LINE or not _may_become_header(line):
                raise Refused("not LSP framing (a line that is not an LSP header)")
    head, _, rest = buffer.partition(b"\r\n\r\n")
    length = None
    for line in head.split(b"\r\n"):
        match = _HEADER.fullmatch(line + b"\r\n")
        if match is None:
            raise Refused("not LSP framing (a line that is not an LSP header)")
        if match.group(1).lower() == b"content-length":
            value = match.group(2).strip()
            if not value.isdigit():
                raise Refused("not LSP framing (a bad Content-Length)")
            length = int(value)
    if length is None:
        raise Refused("not LSP framing (no Content-Length)")
    if length > MAX_FIRST_BODY:
        raise Refused(f"a first message of {length} bytes (at most {MAX_FIRST_BODY})")
    if len(rest) < length:
        try:
            rest += await reader.readexactly(length - len(rest))
        except asyncio.IncompleteReadError as exc:
            raise Refused("closed in the middle of its first message") from exc
    body, leftover = rest[:length], rest[length:]
    try:
        message = json.loads(body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise Refused("a first message that is not JSON") from exc
    if not isinstance(message, dict):
        raise Refused("a first message that is not a JSON object")
    return message, leftover


def _frame(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, separators=(",", ":")).encode("utf-8")
    return b"Content-Length: %d\r\n\r\n%s" % (len(body), body)


def take_token(message: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The token an ``initialize`` request carries, and the message without it."""
    params = message.get("params")
    options = params.get("initializationOptions") if isinstance(params, dict) else None
    if not isinstance(options, dict) or "token" not in options:
        return None, message
    given = options["token"]
    options = {k: v for k, v in options.items() if k != "token"}
    message = {**message, "params": {**params, "initializationOptions": options}}
    return (given if isinstance(given, str) else None), message


class _Replay:
    """A reader that gives ``head`` first, then what the connection sends (the two calls
    pygls' message loop makes)."""

    def __init__(self, head: bytes, reader: asyncio.StreamReader) -> None:
        self._head = head
        self._reader = reader

    async def readline(self) -> bytes:
        if self._head:
            end = self._head.find(b"\n")
            if end >= 0:
                line, self._head = self._head[: end + 1], self._head[end + 1 :]
                return line
            rest, self._head = self._head, b""
            return rest + await self._reader.readline()
        return await self._reader.readline()

    async def readexactly(self, n: int) -> bytes:
        if self._head:
            part, self._head = self._head[:n], self._head[n:]
            if len(part) == n:
                return part
            return part + await self._reader.readexactly(n - len(part))
        return await self._reader.readexactly(n)


# -- the listener ------------------------------------------------------------------------


class TcpListener:
    """Serves ``server`` (a pygls LanguageServer) to one authenticated TCP client."""

    def __init__(
        self,
        server: Any,
        token: str,
        ssl_context: ssl.SSLContext | None = None,
        handshake_timeout: float = HANDSHAKE_TIMEOUT_S,
    ) -> None:
        self.server = server
        self._token = token.encode("utf-8")
        self.ssl_context = ssl_context
        self.handshake_timeout = handshake_timeout
        self.client: str | None = None  # the attached client's address
        self.refused = 0
        self._asyncio_server: asyncio.base_events.Server | None = None

    def start(self, host: str, port: int, ready: Any = None) -> None:
        """Listen and serve until the attached client goes (blocking). ``ready``, when given,
        is called with the bound (host, port) once the socket listens."""
        from threading import Event

        self.server._stop_event = Event()
        try:
            asyncio.run(self._serve(host, port, ready))
        except asyncio.CancelledError:
            pass

    async def _serve(self, host: str, port: int, ready: Any) -> None:
        self._asyncio_server = await asyncio.start_server(
            self._connection,
            host,
            port,
            ssl=self.ssl_context,
            ssl_handshake_timeout=self.handshake_timeout if self.ssl_context else None,
        )
        self.server._server = self._asyncio_server  # pygls' shutdown() closes it
        if ready is not None:
            ready(self._asyncio_server.sockets[0].getsockname()[:2])
        async with self._asyncio_server:
            await self._asyncio_server.serve_forever()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        peer = _address(writer.get_extra_info("peername"))
        if self.client is not None:
            await self._refuse(writer, peer, f"a client ({self.client}) is already attached")
            return
        try:
            message, leftover = await asyncio.wait_for(
                read_first_message(reader), self.handshake_timeout
            )
        except TimeoutError:
            await self._refuse(writer, peer, "sent no message in time")
            return
        except Refused as exc:
            await self._refuse(writer, peer, str(exc))
            return
        try:
            first = self._authenticate(message)
        except Refused as exc:
            await self._refuse(writer, peer, str(exc), _error_for(message, exc))
            return
        if self.client is not None:  # another connection authenticated meanwhile
            await self._refuse(writer, peer, f"a client ({self.client}) is already attached")
            return
        self.client = peer
        log.warning("client %s attached", peer)
        await self._run(_Replay(first + leftover, reader), writer, peer)

    def _authenticate(self, message: dict[str, Any]) -> bytes:
        if message.get("method") != "initialize" or "id" not in message:
            raise Refused("a first message that is not the initialize request")
        given, message = take_token(message)
        if given is None:
            raise Refused("no token (initializationOptions.token)")
        if not hmac.compare_digest(given.encode("utf-8"), self._token):
            raise Refused("a wrong token")
        return _frame(message)

    async def _run(self, reader: _Replay, writer: asyncio.StreamWriter, peer: str) -> None:
        from pygls.io_ import run_async

        self.server.protocol.set_writer(writer)
        try:
            await run_async(
                stop_event=self.server._stop_event,
                reader=reader,
                protocol=self.server.protocol,
                logger=logging.getLogger("pygls.io_"),
                error_handler=self.server.report_server_error,
            )
        except (asyncio.IncompleteReadError, ConnectionError, ValueError) as exc:
            log.warning("client %s: connection ended (%s)", peer, type(exc).__name__)
        except SystemExit:  # the client's `exit` notification (pygls exits from its handler)
            pass
        finally:
            log.warning("client %s detached; stopping", peer)
            self.server.shutdown()

    async def _refuse(
        self,
        writer: asyncio.StreamWriter,
        peer: str,
        reason: str,
        answer: bytes | None = None,
    ) -> None:
        self.refused += 1
        log.warning("refused connection from %s: %s", peer, reason)
        try:
            if answer:
                writer.write(answer)
                await asyncio.wait_for(writer.drain(), 2)
            writer.close()
            await asyncio.wait_for(writer.wait_closed(), 2)
        except (TimeoutError, OSError, ssl.SSLError):
            pass


def _error_for(message: Any, exc: Refused) -> bytes | None:
    """An error response to a refused ``initialize`` (a client shows it), else nothing."""
    if not isinstance(message, dict) or message.get("method") != "initialize":
        return None
    ident = message.get("id")
    if not isinstance(ident, int | str):
        return None
    text = (
        f"hone refused the connection: {exc}. Pass the server's token as "
        "initializationOptions.token (see `hone serve --help`)."
    )
    return _frame({"jsonrpc": "2.0", "id": ident, "error": {"code": AUTH_ERROR, "message": text}})


def _address(peername: Any) -> str:
    if isinstance(peername, tuple) and len(peername) >= 2:
        host = peername[0]
        return f"[{host}]:{peername[1]}" if ":" in str(host) else f"{host}:{peername[1]}"
    return str(peername)
