"""The torch releases mgsr has been run on, and one-line refusals for the others.

Why: pip enforces pyproject's ``torch>=`` only while it installs.  A torch put in afterwards (``--no-deps``, a
downgrade, an environment shared with another project) can still be older, and mgsr would then fail deep inside
torch with a traceback that names neither version.  A newer torch is not refused (most releases just work), but
where its exporter fails on mgsr's graph the user gets one line naming the versions and what to do.

:data:`OLDEST` is pyproject's lower bound (``tests/package/test_torch_versions.py`` holds the two equal);
:data:`NEWEST_RUN` is the newest release the marked compatibility subset has passed on (``.ci/compat``).
"""

from __future__ import annotations

import re
import sys
from itertools import pairwise
from pathlib import Path

#: the oldest torch the tests have passed on: pyproject's ``torch>=`` says the same
OLDEST = (2, 13)
#: the newest torch the ``compat`` subset of the tests has passed on (``.ci/compat``, run before each release)
NEWEST_RUN = (2, 15)


def release(version: str) -> tuple[int, int]:
    """``"2.13.0+cpu"`` -> ``(2, 13)``: major and minor, a local tag (``+cu132``) or pre-release ignored."""
    found = re.match(r"(\d+)\.(\d+)", version)
    if found is None:  # not a release number (a source build may say anything): nothing to compare, not refused
        return (sys.maxsize, 0)
    return int(found[1]), int(found[2])


def _name(pair: tuple[int, int]) -> str:
    return f"{pair[0]}.{pair[1]}"


def tested_range() -> str:
    """The releases mgsr has been run on, as users read it: ``torch 2.13 to 2.15``."""
    return f"torch {_name(OLDEST)} to {_name(NEWEST_RUN)}"


def too_old(version: str) -> str | None:
    """The refusal for torch ``version`` when it is older than :data:`OLDEST`, else None."""
    if release(version) >= OLDEST:
        return None
    return (
        f"mgsr needs torch {_name(OLDEST)} or newer and found torch {version}: "
        f"pip install 'torch>={_name(OLDEST)}' (with the torchvision built for it, if torchvision is installed)"
    )


def _running_the_cli() -> bool:
    """True inside the ``mgsr`` command (the console script, ``python -m mgsr``), whose user wants one line, not
    an ImportError's traceback.  (While ``-m`` imports the package, ``sys.argv[0]`` is only ``-m``.)"""
    if sys.argv and sys.argv[0] and Path(sys.argv[0]).stem == "mgsr":
        return True
    return any(pair in (("-m", "mgsr"), ("-m", "mgsr.cli")) for pair in pairwise(sys.orig_argv))


def require_torch() -> None:
    """Refuse an older torch as ``import mgsr`` runs: ImportError for a program, one line and exit 1 for the CLI.

    Called first thing by the package, before any module uses an API the older release lacks.
    """
    import torch

    message = too_old(torch.__version__)
    if message is None:
        return
    if _running_the_cli():
        print(f"mgsr: error: {message}", file=sys.stderr)
        raise SystemExit(1)
    raise ImportError(message)


def exporter_failure(exc: BaseException) -> str:
    """One line for a failure inside torch's ONNX exporter: its innermost cause, the versions, what to do.

    Why: the exporter raises a page-long report whose last cause is the fact (e.g. an operator it cannot
    convert).  Nothing the user typed is at fault: with the built-in components the graph is mgsr's own, so
    the failure comes from the torch release (or from a plugin's component, whose author can act on it).
    """
    import torch

    root = exc
    while root.__cause__ is not None:
        root = root.__cause__
    lines = str(root).strip().splitlines()
    fact = f"{type(root).__name__}: {lines[0] if lines else '(no message)'}"
    return (
        f"torch {torch.__version__}'s ONNX exporter failed on this model ({fact}); mgsr's export is tested with its "
        f"built-in components on {tested_range()}: on another torch, install one of those (pip install "
        f"'torch=={_name(NEWEST_RUN)}.*'), else report this line (to a plugin's author if the model uses a plugin)"
    )
