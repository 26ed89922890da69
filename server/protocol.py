"""The JSON-RPC / LSP protocol layer under the server: how messages are read, answered and
refused before any handler runs (pygls' LanguageServerProtocol, with hone's corrections).

Malformed input (JSON that does not parse, a message that is not JSON-RPC 2.0, an id or
method of the wrong type, params that do not parse, an unknown method, a response to a
request never sent) gets one log line that starts with ``bad message:`` and says what was
wrong; a request among them that can be answered gets an error response. The traceback goes
to the DEBUG level only (``hone serve -vv``). pygls' own multi-line reports of the same
events are dropped or rewritten (:class:`_PyglsMessages`, installed on import).
"""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass
from typing import Any

from cattrs.errors import BaseValidationError
from cattrs.v import format_exception, transform_error
from hone.server.documents import DocumentSyncMixin
from lsprotocol import types
from pygls.exceptions import (
    JsonRpcException,
    JsonRpcInternalError,
    JsonRpcInvalidParams,
    JsonRpcInvalidRequest,
    JsonRpcMethodNotFound,
)
from pygls.protocol import LanguageServerProtocol
from pygls.protocol.json_rpc import RPCRequest
from pygls.protocol.language_server import lsp_method

log = logging.getLogger("hone.server.protocol")

BAD = "bad message: "  # every line about malformed input starts with this
REQUEST_FAILED = -32803  # LSP's RequestFailed: a request refused for a reason the user reads

# The method of the message being handled, for the line about a notification that failed.
_method: contextvars.ContextVar[str] = contextvars.ContextVar("hone_method", default="")
# The id of the request being handled (None for a notification): a handler's task keeps it.
_request_id: contextvars.ContextVar[Any] = contextvars.ContextVar("hone_request_id", default=None)


def current_request_id() -> Any:
    """The id of the request whose handler is running (in its task), else None."""
    return _request_id.get()


def _short(value: Any, limit: int = 80) -> str:
    """``repr`` of a value from the wire, cut to ``limit`` characters (never a newline)."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _format_leaf(exc: BaseException, type_: Any) -> str:
    if type(exc) is ValueError and str(exc):  # lsprotocol validators say which range
        return f"invalid value ({str(exc).splitlines()[0][:120]})"
    return format_exception(exc, type_)


def _why(exc: BaseException) -> str:
    """One line saying why a message did not structure (cattrs' paths, e.g. `$.params.position`)."""
    cause = exc.__cause__ or exc
    if isinstance(cause, BaseValidationError):
        text = "; ".join(transform_error(cause, format_exception=_format_leaf))
    else:
        text = f"{type(cause).__name__}: {cause}"
    return _one_line(text)


@dataclass
class Refused:
    """A message that did not structure: what it was, why, and the id to answer (if any).

    Returned by :meth:`HoneProtocol.structure_message` instead of raising, so that only the
    message as a whole (not a JSON object nested in it) is reported and answered, once."""

    what: str  # e.g. "request 7 'textDocument/hover'"; empty when nothing can be said
    reason: str
    answer_id: int | str | None = None
    code: int = JsonRpcInvalidRequest.CODE
    exc: BaseException | None = None


def _json_kind(value: Any) -> str:
    if isinstance(value, dict):
        return 'an object without "jsonrpc"'
    names = {
        list: "an array",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
    }
    return names.get(type(value), "null")


def _usable_id(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))


def _what(data: dict[str, Any]) -> str:
    """How a log line names a message: `request 7 'textDocument/hover'`, `notification ...`."""
    msg_id, method = data.get("id"), data.get("method")
    if isinstance(method, str):
        if "id" in data:
            return f"request {_short(msg_id)} {_short(method)}"
        return f"notification {_short(method)}"
    if "id" in data and ("result" in data or "error" in data):
        return f"response {_short(msg_id)}"
    if "id" in data and "method" in data:
        return f"request {_short(msg_id)}"
    return ""


def _envelope(data: dict[str, Any]) -> Refused | None:
    """Check the JSON-RPC 2.0 envelope (before the params): version, id, method, shape."""
    msg_id, method, what = data.get("id"), data.get("method"), _what(data)
    has_id = "id" in data
    # A request with a usable id is answered (InvalidRequest); anything else cannot be.
    answer_id = msg_id if "method" in data and _usable_id(msg_id) else None
    if data.get("jsonrpc") != "2.0":
        return Refused(what, f'jsonrpc must be "2.0", got {_short(data["jsonrpc"])}', answer_id)
    if has_id and not _usable_id(msg_id):
        return Refused(what, f"id must be an integer or a string, got {_short(msg_id)}")
    if "method" in data and not isinstance(method, str):
        return Refused(what, f"method must be a string, got {_short(method)}", answer_id)
    if "method" not in data and not (has_id and ("result" in data or "error" in data)):
        return Refused(what, "neither a request, a notification nor a response")
    return None


class HoneProtocol(DocumentSyncMixin, LanguageServerProtocol):
    """pygls' protocol with hone's corrections:

    - a request whose params do not parse gets an InvalidParams error response (pygls only
      reports it), one with a broken envelope InvalidRequest, an unknown method
      MethodNotFound; every malformed message gets one ``bad message:`` log line;
    - after ``shutdown`` a request gets an InvalidRequest error response (pygls drops it,
      leaving the client waiting); notifications other than ``exit`` are dropped.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cancel_listeners: list[Any] = []  # called with the id of each $/cancelRequest

    @lsp_method(types.WORKSPACE_EXECUTE_COMMAND)
    def lsp_workspace__execute_command(self, params: types.ExecuteCommandParams) -> Any:
        """pygls gives a command its arguments only: hone's commands, which take one object,
        also get the request's work-done token in it, as ``_workDoneToken``."""
        args = list(params.arguments or ())
        token = params.work_done_token
        if token is not None and args and isinstance(args[0], dict):
            params.arguments = [{**args[0], "_workDoneToken": token}, *args[1:]]
        return (yield from super().lsp_workspace__execute_command(params))

    def _handle_cancel_notification(self, msg_id: Any) -> None:
        """pygls cancels a request's result; a command runs on (pygls runs commands as
        generators): each of ``cancel_listeners`` is told the id, to stop its work."""
        super()._handle_cancel_notification(msg_id)
        for listener in list(self.cancel_listeners):
            listener(msg_id)

    def structure_message(self, data: dict[str, Any]) -> Any:
        if "jsonrpc" not in data:
            return data  # a nested object, or not JSON-RPC at all (handle_message says so)
        if (refused := _envelope(data)) is not None:
            return refused
        if "method" in data and "params" not in data:
            data = {**data, "params": None}  # JSON-RPC allows leaving params out
        try:
            return super().structure_message(data)
        except Exception as exc:  # noqa: BLE001 - reported once, by handle_message
            if "method" not in data:
                return Refused(_what(data), f"does not parse ({_why(exc)})", exc=exc)
            reason = f"params do not parse ({_why(exc)})"
            return Refused(_what(data), reason, data.get("id"), JsonRpcInvalidParams.CODE, exc)

    def handle_message(self, message: Any) -> None:
        if isinstance(message, Refused):
            self._refuse(message)
            return
        if not hasattr(message, "jsonrpc"):  # JSON that is not a JSON-RPC object
            self._refuse(Refused("", f"not a JSON-RPC 2.0 object ({_json_kind(message)})"))
            return
        method = getattr(message, "method", None)
        is_request = isinstance(message, RPCRequest)
        if self._shutdown and method != types.EXIT:
            if is_request:
                log.warning(
                    "request %s %s after shutdown: answered InvalidRequest",
                    _short(message.id),
                    _short(method),
                )
                self._send_response(
                    message.id,
                    error=JsonRpcInvalidRequest(
                        f"the server is shut down: {method!r} is not accepted after shutdown"
                    ).to_response_error(),
                )
            else:
                log.debug("notification %s after shutdown dropped", _short(method))
            return
        if method is not None and not self._knows(method):
            if is_request:
                self._refuse(
                    Refused(
                        f"request {_short(message.id)} {_short(method)}",
                        "unknown method",
                        message.id,
                        JsonRpcMethodNotFound.CODE,
                    )
                )
            elif method.startswith("$/") or method in types.METHOD_TO_TYPES:
                # Optional or unimplemented LSP notifications: the protocol lets us ignore them.
                log.debug("notification %s ignored: not implemented", _short(method))
            else:
                self._refuse(Refused(f"notification {_short(method)}", "unknown method"))
            return
        if method is None and message.id not in self._request_futures:
            self._refuse(Refused(f"response {_short(message.id)}", "no request has this id"))
            return
        _method.set(method or "")
        _request_id.set(message.id if is_request else None)
        try:
            super().handle_message(message)
        except Exception as exc:  # noqa: BLE001 - one line here instead of pygls' traceback
            what = f"request {_short(message.id)}" if is_request else "notification"
            self._refuse(
                Refused(
                    f"{what} {_short(method)}",
                    f"could not be handled ({_one_line(f'{type(exc).__name__}: {exc}')})",
                    message.id if is_request else None,
                    JsonRpcInternalError.CODE,
                    exc,
                )
            )
            self._server._report_server_error(exc, JsonRpcException)

    def _check_handler_result(self, future: Any) -> None:
        """A notification's handler failed (e.g. didChange for a document never opened):
        one line here; pygls only shows the user a message, and logs nothing."""
        if not future.cancelled() and (exc := future.exception()) is not None:
            problem = _one_line(f"{type(exc).__name__}: {exc}")
            log.warning("notification %s failed (%s)", _short(_method.get()), problem)
            log.debug("the traceback of the failed notification above", exc_info=exc)
        super()._check_handler_result(future)

    def _knows(self, method: str) -> bool:
        return (
            method == types.CANCEL_REQUEST
            or method in self.fm.builtin_features
            or method in self.fm.features
        )

    def _refuse(self, refused: Refused) -> None:
        """One log line for a malformed message; an error response where one can be sent."""
        answer = ""
        if refused.answer_id is not None:
            message = f"{refused.what}: {refused.reason}" if refused.what else refused.reason
            error = JsonRpcException(message, code=refused.code).to_response_error()
            self._send_response(refused.answer_id, error=error)
            names = {
                JsonRpcInvalidParams.CODE: "InvalidParams",
                JsonRpcInvalidRequest.CODE: "InvalidRequest",
                JsonRpcMethodNotFound.CODE: "MethodNotFound",
                JsonRpcInternalError.CODE: "InternalError",
            }
            answer = f"; answered {names.get(refused.code, refused.code)}"
        what = f"{refused.what}: " if refused.what else ""
        log.warning("%s%s%s%s", BAD, what, refused.reason, answer)
        if refused.exc is not None and log.isEnabledFor(logging.DEBUG):
            log.debug("the traceback of the bad message above", exc_info=refused.exc)


class _PyglsMessages(logging.Filter):
    """pygls' own reports of malformed input, made to match :class:`HoneProtocol`'s: its
    "Unable to deserialize message" (with the traceback in the message text) is dropped,
    since HoneProtocol reports the message itself; its reader's "Unable to handle message"
    (JSON that does not parse) becomes one ``bad message:`` line, the traceback kept for
    the formatter to show at DEBUG level only."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg if isinstance(record.msg, str) else ""
        if msg.startswith("Unable to deserialize message"):
            return False
        if msg == "Unable to handle message" and record.exc_info and record.exc_info[1]:
            exc = record.exc_info[1]
            if isinstance(exc, ValueError | RecursionError):  # JSONDecodeError, UnicodeError
                reason = f"not valid JSON ({_one_line(str(exc))})"
            else:
                reason = f"could not be handled ({_one_line(f'{type(exc).__name__}: {exc}')})"
            record.msg, record.args = "%s%s", (BAD, reason)
            record.levelno, record.levelname = logging.WARNING, "WARNING"
            record.name = log.name  # reads like the rest of the bad-message lines
        if msg.startswith("Exception occurred for message") and record.exc_info:
            exc = record.exc_info[1]
            if getattr(exc, "CODE", None) == REQUEST_FAILED:  # a command refused, said to
                # the user in the error response: one line, no traceback
                record.msg, record.args = "request refused: %s", (_one_line(str(exc)),)
                record.levelno, record.levelname = logging.INFO, "INFO"
                record.exc_info = record.exc_text = None
        return True


_filter = _PyglsMessages()
for _name in ("pygls.protocol.json_rpc", "pygls.server"):
    logging.getLogger(_name).addFilter(_filter)
