"""The ``mgsr`` command line: one sub-command per job, errors as one line and an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import upscale_cli
from . import eval_cli
from . import export_cli
from .errors import MgsrError


def _cmd_plugins(args: argparse.Namespace) -> int:
    from .registry import default_registry, iter_components

    registry = default_registry()
    by_plugin: dict[str, list[str]] = {}
    for kind, name, provided in iter_components(registry):
        by_plugin.setdefault(provided.plugin.name, []).append(f"{kind}:{name}")
    width = max((len(info.name) for info in registry.plugins), default=0)
    for info in registry.plugins:
        dist = f"{info.distribution} {info.version}" if info.distribution else "(not installed as a distribution)"
        comps = ", ".join(by_plugin.get(info.name, [])) or "(no components)"
        print(f"{info.name:<{width}}  {dist:<20} {comps}")
    for broken in registry.broken:
        print(f"BROKEN {broken.info.describe()}: {broken.error}")
    for kind, name, providers in registry.duplicates():
        who = ", ".join(p.plugin.name for p in providers)
        print(f"CONFLICT {kind} '{name}' provided by {who}")
    return 0


def _cmd_recipe_show(args: argparse.Namespace) -> int:
    import tomli_w

    from .recipe import load_recipe

    recipe = load_recipe(args.file)
    print(f"# resolved recipe {args.file} (sha256 {recipe.digest()[:16]})")
    sys.stdout.write(tomli_w.dumps(recipe.to_dict()))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .training import train

    path = train(args.recipe, data=args.data, out=args.out, resume=args.resume, overrides=args.set,
                 device=args.device, progress=not args.quiet)
    print(f"trained generator: {path}  (use it with: mgsr upscale IMAGE -o OUT --model {path.parent})")
    return 0


def _cmd_import_weights(args: argparse.Namespace) -> int:
    from .pretrained import ModelCard, import_official, save_state_dict

    spec, state = import_official(args.source, mu=args.mu, default_noise=args.noise)
    card = ModelCard(name=args.name or Path(args.output).stem, default_noise=args.noise,
                     source=f"imported from {Path(args.source).name}", license=args.license)
    save_state_dict(args.output, state, spec, card)
    print(f"wrote {args.output} ({sum(t.numel() for t in state.values()):,} parameters)")
    return 0


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mgsr", description=__doc__)
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("plugins", help="list plugins, their distributions and components")
    p.set_defaults(func=_cmd_plugins)

    p = sub.add_parser("recipe", help="inspect recipes")
    rsub = p.add_subparsers(dest="recipe_command", required=True)
    show = rsub.add_parser("show", help="print the fully resolved recipe (defaults filled in)")
    show.add_argument("file")
    show.set_defaults(func=_cmd_recipe_show)

    upscale_cli.register(sub)

    p = sub.add_parser("train", help="train G-MGBP from a TOML recipe (resumable)")
    p.add_argument("recipe", help="a recipe file, e.g. recipes/quickstart.toml")
    p.add_argument("--data", action="append", default=None, metavar="DIR",
                   help="training image folder (repeatable); replaces data.train of the recipe")
    p.add_argument("--out", default=None, metavar="RUN_DIR", help="run folder (default runs/<recipe name>)")
    p.add_argument("--resume", default=None, metavar="auto|PATH",
                   help="continue from the newest complete checkpoint of the run folder (auto) or from PATH")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set training.steps=100; KEY=none restores the default "
                        "(repeatable)")
    p.add_argument("--device", default="cpu")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("import-weights", help="convert a released G-MGBP .model file to mgsr safetensors")
    p.add_argument("source")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--name", default=None)
    p.add_argument("--noise", type=float, default=1.0, help="the W to record as the model's default")
    p.add_argument("--mu", type=int, default=2)
    p.add_argument("--license", default="LGPL-3.0-only")
    p.set_defaults(func=_cmd_import_weights)

    eval_cli.register(sub)
    export_cli.register(sub)
    return parser


def _version() -> str:
    from . import __version__

    return f"mgsr {__version__}"


def check_device(name: str) -> None:
    """Refuse a device this machine does not have with one clear line, before any work starts."""
    import torch

    try:
        device = torch.device(name)
    except RuntimeError:
        raise MgsrError(f"--device {name!r} is not a device name; use cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise MgsrError(f"--device {name}: no CUDA device is available here (this torch build: "
                            f"{torch.__version__}); use --device cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise MgsrError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise MgsrError(f"--device {name}: MPS is not available here; use --device cpu")


def _format_warning(message, category, filename, lineno, line=None) -> str:  # noqa: ANN001 - warnings' signature
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


if __name__ == "__main__":
    sys.exit(main())
