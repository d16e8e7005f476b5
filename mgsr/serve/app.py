"""``mgsr serve`` on HTTP: the server's state made from the operator's options, and the page served by Gradio.

The HTTP side in one place: what the server listens on, the limits a request meets before Gradio reads it
(:mod:`.limits`, per upload: ``max_file_size``), the only folder it serves files from, and Pillow's
decompression-bomb limit made the operator's.  The page itself is :mod:`.layout` and :mod:`.wiring`.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
from starlette.middleware import Middleware

from mgsr.serve import page
from mgsr.serve.catalog import Catalog
from mgsr.serve.crop import DEFAULT_PREVIEW_SIDE
from mgsr.serve.limits import RequestLimits
from mgsr.serve.maps import CalibrationFile
from mgsr.serve.server import Server
from mgsr.serve.uploads import Limits
from mgsr.serve.wiring import build_app


def make_server(
    models: list[str],
    device: str,
    limits: Limits,
    work: Path,
    preview_side: int = DEFAULT_PREVIEW_SIDE,
    calibration: CalibrationFile | None = None,
) -> Server:
    """The server state; also makes Pillow's decompression-bomb limit ours for this process.

    Uploads meet ``--max-pixels`` first, in mgsr's words (:func:`mgsr.serve.uploads.check_limits`).
    Gradio decodes what the client sends for the painting layers itself; Pillow refuses there
    whatever is over ``max_pixels`` too (its warning made an error), so the two limits agree.
    ``device`` may be ``auto``; ``server.catalog.device`` is what it resolved to.
    """
    import warnings

    from PIL import Image

    Image.MAX_IMAGE_PIXELS = limits.max_pixels
    warnings.simplefilter("error", Image.DecompressionBombWarning)
    return Server(Catalog(models, device), limits, work, preview_side, calibration)


def theme() -> gr.themes.Base:
    """System fonts only: the page makes no request to any other site."""
    return gr.themes.Soft(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "SFMono-Regular", "monospace"]
    )


def launch(server: Server, host: str, port: int, *, block: bool = True) -> tuple[gr.Blocks, str]:
    """Start serving; returns the Blocks and the local URL (``block=False`` returns at once)."""
    demo = build_app(server)
    demo.queue(default_concurrency_limit=1)
    _, url, _ = demo.launch(
        # request bodies limited before Gradio reads them (mgsr.serve.limits): no 200 MB JSON in memory or log
        app_kwargs={"middleware": [Middleware(RequestLimits)]},
        server_name=host,
        server_port=port,
        max_file_size=server.limits.max_bytes,
        allowed_paths=[str(server.work)],
        ssr_mode=False,
        share=False,
        quiet=True,
        prevent_thread_lock=not block,
        show_error=True,
        theme=theme(),
        css=page.CSS,
        head=page.HEAD,
        footer_links=[],
        pwa=False,
        mcp_server=False,
    )
    return demo, url


__all__ = ["launch", "make_server", "theme"]
