"""``mgsr import-weights``: a released ``.model`` file -> an mgsr safetensors file with its card."""

from __future__ import annotations

import argparse
from pathlib import Path


def run(args: argparse.Namespace) -> int:
    from mgsr.cli.options import refuse_folder_output
    from mgsr.io.overwrite import refuse_overwriting
    from mgsr.model.amplitude import check_amplitude
    from mgsr.model.official import import_official
    from mgsr.model.weights import ModelCard, save_state_dict

    refuse_folder_output(args.output, f"{Path(args.source).stem}.safetensors")
    refuse_overwriting([args.output], [args.source])
    check_amplitude(args.noise, f"--noise {args.noise!r}")
    spec, state = import_official(args.source, mu=args.mu, default_noise=args.noise)
    card = ModelCard(
        name=args.name or Path(args.output).stem,
        default_noise=args.noise,
        source=f"imported from {Path(args.source).name}",
        license=args.license,
    )
    save_state_dict(args.output, state, spec, card)
    print(f"wrote {args.output} ({sum(t.numel() for t in state.values()):,} parameters)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("import-weights", help="convert a released G-MGBP .model file to mgsr safetensors")
    p.add_argument("source")
    p.add_argument("-o", "--output", required=True)
    p.add_argument("--name", default=None)
    p.add_argument("--noise", type=float, default=1.0, help="the W to record as the model's default")
    p.add_argument("--mu", type=int, default=2)
    p.add_argument("--license", default="LGPL-3.0-only")
    p.set_defaults(func=run)
