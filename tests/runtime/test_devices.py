"""``--device auto`` (the default of every command that runs a network) and the one line saying what it chose."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from mgsr.cli import main, make_parser
from mgsr.errors import MgsrError
from mgsr.runtime.devices import AUTO, describe_device, device_line, resolve_device

from ..helpers import smooth_rgb, tiny_recipe

ON_CPU_ONLY = pytest.mark.skipif(
    torch.cuda.is_available() or torch.backends.mps.is_available(),
    reason="checks the CPU fallback; this machine has a CUDA or MPS device",
)


def running_lines(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("mgsr: ") and "running on " in line]


@ON_CPU_ONLY
def test_auto_falls_back_to_the_cpu_and_says_why():
    threads = torch.get_num_threads()
    assert resolve_device(AUTO) == "cpu"
    assert resolve_device(AUTO, local_rank=3) == "cpu"  # under torchrun too: auto never errors
    assert describe_device(AUTO, "cpu") == f"cpu (no CUDA device; {threads} thread{'' if threads == 1 else 's'})"
    assert describe_device("cpu", "cpu").startswith("cpu (--device cpu; ")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_auto_picks_the_card_and_names_it():
    assert resolve_device(AUTO) == "cuda:0"
    assert describe_device(AUTO, "cuda:0") == f"cuda:0 ({torch.cuda.get_device_name(0)})"
    count = torch.cuda.device_count()
    assert resolve_device("cuda", local_rank=count - 1) == f"cuda:{count - 1}"
    with pytest.raises(MgsrError, match=f"--nproc_per_node={count}"):
        resolve_device(AUTO, local_rank=count)


def test_each_rank_names_itself_and_one_process_does_not():
    assert device_line("cpu", "cpu").startswith("mgsr: running on cpu (--device cpu; ")
    assert device_line("cpu", "cpu", rank=1, world_size=2).startswith("mgsr: rank 1 of 2 running on cpu (")


def test_explicit_names_are_checked_and_kept():
    assert resolve_device("cpu") == "cpu"
    with pytest.raises(MgsrError, match="'gpu7' is not a device name; use auto"):
        resolve_device("gpu7")


@pytest.mark.parametrize(
    "argv",
    [
        ["upscale", "a.png", "-o", "b.png"],
        ["train", "recipe.toml"],
        ["eval", "--sr", "out"],
        ["sweep", "--model", "pirm-r3", "--hr", "hr"],
        ["calibrate", "--model", "pirm-r3", "--hr", "hr", "--max-rmse", "11.5"],
        ["serve"],
    ],
)
def test_every_network_command_defaults_to_auto_and_takes_quiet(argv):
    parser = make_parser()
    assert parser.parse_args(argv).device == AUTO
    args = parser.parse_args([*argv, "--device", "cpu", "-q"])
    assert args.device == "cpu" and args.quiet


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
@pytest.mark.parametrize("command", [["upscale", "a.png", "-o", "b.png"], ["train", "recipe.toml"]])
def test_explicit_cuda_without_a_card_is_one_clear_error(command, capsys):
    assert main([*command, "--device", "cuda"]) == MgsrError.exit_code
    err = capsys.readouterr().err
    assert err.startswith("mgsr: error: --device cuda: no CUDA device is available here") and err.count("\n") == 1


def test_upscale_says_once_what_it_runs_on_unless_quiet(tmp_path, capsys):
    src = tmp_path / "a.png"
    Image.fromarray(smooth_rgb(8, 8)).save(src)
    assert main(["upscale", str(src), "-o", str(tmp_path / "b.png"), "--scale", "2"]) == 0
    lines = running_lines(capsys.readouterr().err)
    assert lines == [f"mgsr: running on {describe_device(AUTO, resolve_device(AUTO))}"]
    assert main(["upscale", str(src), "-o", str(tmp_path / "c.png"), "--scale", "2", "-q"]) == 0
    assert running_lines(capsys.readouterr().err) == []


def test_eval_of_a_model_says_its_device_and_bicubic_does_not(tmp_path, capsys):
    hr = tmp_path / "hr"
    hr.mkdir()
    Image.fromarray(smooth_rgb(104, 104)).save(hr / "a.png")  # 104: NIQE's smallest block after the shave
    assert main(["eval", "--model", "pirm-r3", "--hr", str(hr), "--noise", "0"]) == 0
    assert running_lines(capsys.readouterr().err) == [f"mgsr: running on {describe_device(AUTO, resolve_device(AUTO))}"]
    assert main(["eval", "--model", "pirm-r3", "--hr", str(hr), "--noise", "0", "-q"]) == 0
    assert main(["eval", "--model", "bicubic", "--hr", str(hr)]) == 0
    assert running_lines(capsys.readouterr().err) == []


def test_train_says_what_it_runs_on(tmp_path, capsys):
    recipe = tiny_recipe(tmp_path, steps=1)
    assert main(["train", str(recipe), "--out", str(tmp_path / "run"), "--device", "cpu"]) == 0
    assert running_lines(capsys.readouterr().err) == [f"mgsr: running on {describe_device('cpu', 'cpu')}"]
