"""What one HTTP request to ``mgsr serve`` may carry, checked before the web framework reads it.

Why: Gradio reads a JSON body whole and parses it before any handler of ours runs, and echoes a value it
refuses (a model name not offered, say) into its log and its answer.  A 200 MB post grew the server by
1.6 GB and wrote the 200 MB into the log.  The page itself never sends more than a few kB of JSON: the
image, the mask and the painting go through Gradio's upload route (limited per file by
``--max-upload-mb``) and are referred to by path.  So every other request is refused with 413 beyond
:data:`MAX_BODY_BYTES` (from its ``Content-Length`` before reading anything, else while reading), and a
JSON body holding a text longer than :data:`MAX_TEXT` is refused too, so no payload is echoed.

A plain ASGI middleware (no Gradio import): ``launch`` hands it to the app (``app_kwargs``).
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

#: largest body of a request other than an upload: the page's requests are a few kB of JSON
MAX_BODY_BYTES = 256 * 1024
#: longest text in a JSON body: file names, paths and URLs of uploaded files are a few hundred characters
MAX_TEXT = 1024
#: the routes that take files (multipart, limited per file by Gradio's ``max_file_size``)
UPLOAD_PATHS = ("/gradio_api/upload",)


class RequestTooLarge(Exception):
    """A request refused by its size; ``status`` and the message are the answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def check_json(body: bytes, max_text: int = MAX_TEXT) -> None:
    """Refuse a JSON body with a text longer than ``max_text``; a body that is no JSON is left to the framework.

    Walked with a stack, not recursion: a body of deeply nested lists must not exhaust Python's stack.
    """
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):
        return
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and len(item) > max_text:
            raise RequestTooLarge(
                413, f"a text of {len(item)} characters in the request; this server takes at most {max_text}"
            )
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole body, refused as soon as it passes ``limit`` bytes (a body without a declared length)."""
    chunks, size, more = [], 0, True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise RequestTooLarge(413, too_large(size, limit, "at least "))
        chunks.append(chunk)
        more = bool(message.get("more_body", False))
    return b"".join(chunks)


def too_large(size: int, limit: int, prefix: str = "") -> str:
    """The answer to a body over the limit, saying what the page does instead."""
    return (
        f"the request body is {prefix}{size} bytes; this server takes at most {limit} bytes outside "
        f"file uploads (send files to {UPLOAD_PATHS[0]} and refer to them by path, as the page does)"
    )


class RequestLimits:
    """ASGI middleware refusing oversized request bodies and oversized texts in JSON (see the module)."""

    def __init__(self, app: ASGIApp, max_body: int = MAX_BODY_BYTES, max_text: int = MAX_TEXT) -> None:
        self.app, self.max_body, self.max_text = app, max_body, max_text

    def _checked(self, scope: Scope) -> bool:
        """Whether this request's body is ours to check: HTTP with a body, not an upload."""
        if scope["type"] != "http" or scope.get("method") in ("GET", "HEAD", "OPTIONS"):
            return False
        path = str(scope.get("path", "")).rstrip("/")
        return not any(path.endswith(upload) for upload in UPLOAD_PATHS)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self._checked(scope):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            declared = int(headers.get("content-length", "0") or 0)
            if declared > self.max_body:  # refused unread: the body never enters memory
                raise RequestTooLarge(413, too_large(declared, self.max_body))
            body = await read_body(receive, self.max_body)
            if "json" in headers.get("content-type", ""):
                check_json(body, self.max_text)
        except ValueError:
            await _answer(send, 400, "the Content-Length header is not a number")
            return
        except RequestTooLarge as refused:
            await _answer(send, refused.status, str(refused))
            return
        await self.app(scope, _replay(body, receive), send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` giving the body already read, then whatever the client sends next (a disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


async def _answer(send: Send, status: int, message: str) -> None:
    """A short JSON answer (``{"error": ...}``), closing the connection: the rest of the body is not read."""
    payload = json.dumps({"error": message}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": [*headers, (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": payload})
