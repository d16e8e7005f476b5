"""What a failed request of ``mgsr serve`` tells the page and the server's log: never a server path, never
the client's payload.

Its own module, and free of Gradio, because it is the server's side of every answer that is not a result:
mgsr's own errors are shown as they are, anything else as "this request failed" with its traceback's frames
in the log; both cut to :data:`MESSAGE_CHARS` (an exception's text may quote what the client sent) and with
every file path cut to its name.  :func:`mgsr.serve.wiring.guarded` raises the message as Gradio's error.
"""

from __future__ import annotations

import re
import sys
import traceback

from mgsr.errors import MgsrError

#: the most of an exception's text a message or the log repeats
MESSAGE_CHARS = 300
#: a file path in a message: at least two separators; only its last part is kept
_PATH = re.compile(r"""(?:[A-Za-z]:)?[\\/](?:[^\s'"\\/:]+[\\/])+([^\s'"\\/]*)""")


def public_message(text: str) -> str:
    """``text`` with every file path cut to its file name, for the page.

    The server's folders (Gradio's upload cache and its hash folders, mgsr's work
    folder) say nothing to the user and much to an attacker; the file name is what
    the user knows the file by.
    """
    return _PATH.sub(lambda m: m.group(1) or "(a folder)", text)


def short(text: str) -> str:
    """``text`` cut to :data:`MESSAGE_CHARS`, saying how much was left out."""
    if len(text) <= MESSAGE_CHARS:
        return text
    return f"{text[:MESSAGE_CHARS]}... ({len(text) - MESSAGE_CHARS} more characters not shown)"


def page_message(exc: Exception) -> str:
    """The page's message for a request that raised ``exc``; an unexpected failure is also logged with its frames.

    An :class:`mgsr.errors.MgsrError` is mgsr's own message, shown as it is; anything else is named by its
    type and said not to have stopped the server.
    """
    if isinstance(exc, MgsrError):
        return public_message(short(str(exc)))
    said = f"{type(exc).__name__}: {short(str(exc))}"
    print(f"mgsr serve: a request failed ({said}); where:", file=sys.stderr)
    print("".join(traceback.format_tb(exc.__traceback__)), end="", file=sys.stderr)  # frames, no values
    return public_message(f"this request failed ({said}); the server keeps running")
