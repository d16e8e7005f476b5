"""``mgsr comfyui install COMFYUI_DIR``: put mgsr's node pack into a ComfyUI installation.

The pack is one small folder (:data:`mgsr.integrations.comfyui.PACK_DIR`) whose loader imports the nodes from the mgsr
installed beside ComfyUI; a link keeps it in step with that mgsr, ``--copy`` suits file systems or sync tools
without links.  Nothing here imports ComfyUI.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from mgsr.errors import MgsrError


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "comfyui",
        help="install mgsr's ComfyUI nodes (Upscale Image (mgsr, detail); mgsr files in Load Upscale Model)",
        description="Install mgsr's node pack into ComfyUI: a link (or a copy) of one folder in custom_nodes/.",
    )
    actions = p.add_subparsers(dest="action", required=True)
    install = actions.add_parser(
        "install",
        help="link the pack into COMFYUI_DIR/custom_nodes/comfyui-mgsr",
        description="Link (or copy) the pack into COMFYUI_DIR/custom_nodes/comfyui-mgsr, then restart ComfyUI. "
        "ComfyUI must run in a Python where mgsr is installed.",
    )
    install.add_argument("comfyui_dir", metavar="COMFYUI_DIR", help="the ComfyUI folder (holding custom_nodes/)")
    install.add_argument("--copy", action="store_true", help="copy the folder instead of linking it")
    install.add_argument(
        "--weights",
        action="store_true",
        help="also copy the bundled pirm-r1/r2/r3 .safetensors into models/upscale_models/, for the core "
        "'Load Upscale Model' (the mgsr node offers them without)",
    )
    install.set_defaults(func=run)


def _is_ours(target: Path) -> bool:
    """Whether ``target`` is a pack this command put there (a link to, or a copy of, the loader)."""
    from mgsr.integrations.comfyui import PACK_DIR

    if target.is_symlink():
        return True  # replaced by a link to this mgsr's pack: a link to an older checkout is what moves
    loader = target / "__init__.py"
    if not loader.is_file():
        return False
    # a copy from any mgsr release (the loader moved with the pack, from mgsr.comfyui to mgsr.integrations.comfyui):
    # its docstring's first line names it, so an upgrade replaces an older copy instead of refusing it
    ours = (PACK_DIR / "__init__.py").read_text(encoding="utf-8").splitlines()[0]
    return loader.read_text(encoding="utf-8", errors="replace").splitlines()[:1] == [ours]


def install_pack(comfyui_dir: Path, copy: bool) -> Path:
    """Link or copy the pack into ``comfyui_dir/custom_nodes``; returns where it went."""
    from mgsr.integrations.comfyui import PACK_DIR, PACK_NAME

    nodes = comfyui_dir / "custom_nodes"
    if not nodes.is_dir():
        raise MgsrError(
            f"{comfyui_dir} has no custom_nodes/ folder: give the ComfyUI folder (the one holding main.py "
            "and custom_nodes/)"
        )
    target = nodes / PACK_NAME
    if target.exists() or target.is_symlink():
        if not _is_ours(target):
            raise MgsrError(f"{target} exists and is not mgsr's pack: move it away, then install again")
        if target.is_symlink() or target.is_file():
            target.unlink()
        else:
            shutil.rmtree(target)
    try:
        if copy:
            shutil.copytree(PACK_DIR, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.symlink_to(PACK_DIR, target_is_directory=True)
    except OSError as exc:
        how = "copy" if copy else "link (try --copy)"
        raise MgsrError(f"cannot {how} the pack to {target}: {exc.strerror or exc}") from None
    return target


def copy_weights(comfyui_dir: Path) -> list[Path]:
    """The bundled weights copied into ``models/upscale_models/`` (files already there are left as they are)."""
    from mgsr.io.atomic import atomic_path
    from mgsr.model.weights import BUNDLED, bundled_path

    folder = comfyui_dir / "models" / "upscale_models"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name in BUNDLED:
            source = bundled_path(name)
            if not (folder / source.name).exists():
                with atomic_path(folder / source.name, suffix=".safetensors.tmp") as partial:
                    shutil.copyfile(source, partial)  # never a half-copied model in ComfyUI's list
                written.append(folder / source.name)
    except OSError as exc:
        raise MgsrError(f"cannot copy the bundled weights into {folder}: {exc.strerror or exc}") from None
    return written


def run(args: argparse.Namespace) -> int:
    comfyui_dir = Path(args.comfyui_dir).expanduser()
    target = install_pack(comfyui_dir, args.copy)
    print(f"mgsr: {'copied' if args.copy else 'linked'} the ComfyUI node pack to {target}")
    if args.weights:
        for path in copy_weights(comfyui_dir):
            print(f"mgsr: copied {path.name} to {path.parent}")
    print(
        "mgsr: restart ComfyUI; it must run in a Python where mgsr is installed "
        f"(this mgsr runs in {sys.executable}). Then: node 'Upscale Image (mgsr, detail)' (image/upscaling), "
        "and mgsr .safetensors files in models/upscale_models/ load in 'Load Upscale Model'."
    )
    return 0
