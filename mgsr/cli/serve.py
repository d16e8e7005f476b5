"""``mgsr serve``: start the local web app (needs the ``web`` extra)."""

from __future__ import annotations

import argparse
import atexit
import ipaddress
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from mgsr.cli.options import add_device, whole_number
from mgsr.errors import MgsrError

LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def register(sub: argparse._SubParsersAction) -> None:
    from mgsr.serve.crop import DEFAULT_PREVIEW_SIDE
    from mgsr.serve.uploads import DEFAULT_MAX_BYTES, DEFAULT_MAX_PIXELS

    p = sub.add_parser(
        "serve",
        help="a web page to upscale with W painted per region (needs mgsr[web])",
        description="Start a local web app: upload an image, move W, paint regions, compare "
        "with bicubic, download the result and the equivalent mgsr upscale command.",
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="address to listen on (default 127.0.0.1: this machine only; 0.0.0.0 opens it to the "
        "network, without any login)",
    )
    # 0 ("any free port") is refused: Gradio binds one, then checks its start-up on port 0 and fails late
    p.add_argument("--port", type=whole_number(1, 65535), default=7860, help="1 to 65535 (default 7860)")
    p.add_argument(
        "--model",
        action="append",
        default=[],
        metavar="NAME|PATH",
        help="offer this model too: a bundled name, a .safetensors file, a run folder or a checkpoint "
        "(repeatable); pirm-r1, pirm-r2 and pirm-r3 are always offered",
    )
    p.add_argument(
        "--noise",
        default=None,
        metavar="CALIB.json",
        help="a calibration file from `mgsr calibrate`: an adaptive one (--adaptive) is the page's Automatic "
        "map, a global one sets the starting W (users may load their own on the page too)",
    )
    p.add_argument(
        "--max-upload-mb",
        type=float,
        default=DEFAULT_MAX_BYTES / 2**20,
        help="largest accepted upload in MB (default %(default)g)",
    )
    p.add_argument(
        "--max-pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="largest accepted image in pixels, checked before decoding (default %(default)d)",
    )
    p.add_argument(
        "--preview-size",
        type=int,
        default=DEFAULT_PREVIEW_SIDE,
        help="side of the preview in output pixels (default %(default)d)",
    )
    add_device(p)
    p.add_argument("-q", "--quiet", action="store_true", help="print only the address to open")
    p.set_defaults(func=run)


def is_local(host: str) -> bool:
    """True for a loopback address: nothing but this machine can reach the server."""
    if host in LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run(args: argparse.Namespace) -> int:
    if not 0 <= args.port <= 65535:
        raise MgsrError(f"--port {args.port}: give a port number 0..65535")
    if args.max_upload_mb <= 0 or args.max_pixels <= 0 or args.preview_size < 16:
        raise MgsrError("--max-upload-mb and --max-pixels must be > 0, --preview-size at least 16")

    import os

    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio  # noqa: F401
    except ImportError:
        raise MgsrError('mgsr serve needs the web extra; install it with: pip install "mgsr[web]"') from None
    try:
        from mgsr.serve.app import launch, make_server
    except ImportError as exc:
        raise MgsrError(
            f'mgsr serve cannot import its web dependencies ({exc}); reinstall them with: pip install "mgsr[web]"'
        ) from None
    from mgsr.runtime.devices import announce_device
    from mgsr.serve.maps import operator_calibration
    from mgsr.serve.uploads import Limits

    if not is_local(args.host):
        warnings.warn(
            f"listening on {args.host}: anyone who can reach this machine can use the app and its "
            f"CPU/GPU time (there is no login); use --host 127.0.0.1 to keep it local",
            stacklevel=1,
        )

    calibration = None if args.noise is None else operator_calibration(args.noise)  # its errors name the file
    work = Path(tempfile.mkdtemp(prefix="mgsr-serve-"))
    atexit.register(shutil.rmtree, work, ignore_errors=True)
    limits = Limits(max_bytes=int(args.max_upload_mb * 2**20), max_pixels=args.max_pixels)
    server = make_server(args.model, args.device, limits, work, args.preview_size, calibration)
    if not args.quiet:
        announce_device(args.device, server.catalog.device)
        print(
            f"mgsr serve: models {', '.join(server.catalog.labels)}; uploads up to {args.max_upload_mb:g} MB "
            f"and {args.max_pixels / 1e6:g} Mpx",
            file=sys.stderr,
        )
        if calibration is not None:
            print(f"mgsr serve: {calibration.about().replace('**', '')}", file=sys.stderr)
    try:
        demo, url = launch(server, args.host, args.port, block=False)
    except OSError as exc:
        raise MgsrError(f"cannot listen on {args.host}:{args.port} ({exc}); choose another --port") from None
    print(f"mgsr serve: open {url} (Ctrl+C stops)", file=sys.stderr, flush=True)
    demo.block_thread()
    return 0
