"""The ``mgsr`` command line: errors as one line and the exit code of :mod:`mgsr.errors`.

Each command's module has ``register(subparsers)``; a command's parts that grow their own concept get their own
module beside it (``upscale_video`` is ``mgsr upscale``'s video branch, ``curve`` is ``mgsr calibrate --curve``);
``options`` holds the options several commands share.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from mgsr.cli import comfyui, data, evaluate, export, import_weights, plugins, recipe, serve, train, upscale
from mgsr.errors import MgsrError
from mgsr.runtime.devices import check_device  # the CLI checks --device before any work
from mgsr.version import __version__


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mgsr",
        description="Perception-distortion controllable super-resolution (G-MGBP): upscale, evaluate, train.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

    for command in (plugins, recipe, upscale, train, import_weights, export, evaluate, data, serve, comfyui):
        command.register(sub)
    return parser


def _version() -> str:
    return f"mgsr {__version__}"


def _format_warning(message, category, filename, lineno, line=None) -> str:
    return f"mgsr: warning: {message}\n"


def main(argv: Sequence[str] | None = None) -> int:
    import warnings

    warnings.formatwarning = _format_warning  # one plain line, like the errors
    args = make_parser().parse_args(argv)
    try:
        if getattr(args, "device", None) is not None:
            check_device(args.device)
        return args.func(args)
    except MgsrError as exc:
        print(f"mgsr: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mgsr: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return _reader_gone()


def _reader_gone() -> int:
    """The reader of stdout went away (``mgsr recipe list | head -3``): stop quietly, as Unix tools do, with
    the status of a process ended by SIGPIPE; stdout points at /dev/null so the interpreter's last flush of
    what is still buffered cannot raise again on the way out."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return 128 + 13  # SIGPIPE


if __name__ == "__main__":
    sys.exit(main())
