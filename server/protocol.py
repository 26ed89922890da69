"""The JSON-RPC / LSP protocol layer under the server: how messages are read, answered and
refused before any handler runs (pygls' LanguageServerProtocol, with hone's corrections)."""

from __future__ import annotations

from typing import Any

from pygls.exceptions import JsonRpcInvalidParams
from pygls.protocol import LanguageServerProtocol


class HoneProtocol(LanguageServerProtocol):
    """Answers a request whose params do not parse with an InvalidParams error response
    (pygls only reports it), so the client is not left waiting."""

    def structure_message(self, data: dict[str, Any]) -> Any:
        try:
            return super().structure_message(data)
        except JsonRpcInvalidParams as exc:
            if "id" in data and "method" in data:
                self._send_response(data["id"], error=exc.to_response_error())
            raise
