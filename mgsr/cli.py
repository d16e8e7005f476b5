"""The ``mgsr`` command line: one sub-command per job, errors as one line and an exit code."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from . import eval_cli
from .errors import MgsrError


def _cmd_plugins(args: argparse.Namespace) -> int:
    from .registry import default_registry, iter_components

    registry = default_registry()
    by_plugin: dict[str, list[str]] = {}
    for kind, name, provided in iter_components(registry):
        by_plugin.setdefault(provided.plugin.name, []).append(f"{kind}:{name}")
    for info in registry.plugins:
        dist = f"{info.distribution} {info.version}" if info.distribution else "(not installed as a distribution)"
        comps = ", ".join(by_plugin.get(info.name, [])) or "(no components)"
        print(f"{info.name:<32} {dist:<24} {comps}")
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


def _cmd_import_weights(args: argparse.Namespace) -> int:
    from .pretrained import ModelCard, import_official, save_state_dict

    spec, state = import_official(args.source, mu=args.mu, default_noise=args.noise)
    card = ModelCard(name=args.name or Path(args.output).stem, default_noise=args.noise,
                     source=f"imported from {Path(args.source).name}", license=args.license)
    save_state_dict(args.output, state, spec, card)
    print(f"wrote {args.output} ({sum(t.numel() for t in state.values()):,} parameters)")
    return 0


def _collect_inputs(inputs: Sequence[str]) -> list[Path]:
    from .images import IMAGE_SUFFIXES

    found: list[Path] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()))
        else:
            found.append(path)  # a missing file is reported when it is read, with the others still processed
    return found


def _cmd_upscale(args: argparse.Namespace) -> int:
    import torch

    from .images import IMAGE_SUFFIXES, read_rgb, write_image
    from .inference import upscale_tensor
    from .pretrained import load_generator

    inputs = _collect_inputs(args.inputs)
    if not inputs:
        raise MgsrError("no input images found in " + ", ".join(args.inputs))
    out = Path(args.output)
    single_file = len(inputs) == 1 and out.suffix.lower() in IMAGE_SUFFIXES
    if not single_file:
        out.mkdir(parents=True, exist_ok=True)
    model = load_generator(args.model, device=args.device)
    noise = args.noise if args.noise is not None else model.card.default_noise
    failures = 0
    for path in inputs:
        target = out if single_file else out / f"{path.stem}_x{args.scale}.png"
        try:
            lr = read_rgb(path).to(args.device)
            with torch.inference_mode():
                sr = upscale_tensor(model, lr, scale=args.scale, noise_amp=noise, seed=args.seed)
            write_image(target, sr)
            print(f"{path} -> {target}")
        except MgsrError as exc:
            failures += 1
            print(f"mgsr: error: {exc}", file=sys.stderr)
    return 5 if failures else 0


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

    p = sub.add_parser("upscale", help="super-resolve images with a bundled or trained model")
    p.add_argument("inputs", nargs="+", help="image files or folders")
    p.add_argument("-o", "--output", required=True, help="output file (one input) or folder")
    p.add_argument("--model", default="pirm-r3", help="pirm-r1, pirm-r2, pirm-r3 or a .safetensors file / run folder")
    p.add_argument("--scale", type=int, default=4, choices=(2, 4, 8))
    p.add_argument("--noise", type=float, default=None, help="noise amplitude W (default: the model's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the noise draws (same seed, same output)")
    p.add_argument("--device", default="cpu")
    p.set_defaults(func=_cmd_upscale)

    p = sub.add_parser("import-weights", help="convert a released G-MGBP .model file to mgsr safetensors")
    p.add_argument("source")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--name", default=None)
    p.add_argument("--noise", type=float, default=1.0, help="the W to record as the model's default")
    p.add_argument("--mu", type=int, default=2)
    p.add_argument("--license", default="LGPL-3.0-only")
    p.set_defaults(func=_cmd_import_weights)

    eval_cli.register(sub)
    return parser


def _version() -> str:
    from . import __version__

    return f"mgsr {__version__}"


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        return args.func(args)
    except MgsrError as exc:
        print(f"mgsr: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("mgsr: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
