"""`mgsr eval --help` (and sweep's, calibrate's) names every metric `--metric` takes, lpips included."""

from __future__ import annotations

import pytest

from mgsr.cli import main
from mgsr.evaluation.protocol import get_protocol
from mgsr.registry import default_registry, list_components


@pytest.mark.parametrize("command", ["eval", "sweep"])
def test_metric_help_names_every_shipped_metric(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    shipped = list_components("metric", default_registry(autoload=False))  # built-ins, no installed plugin
    extra = sorted(set(shipped) - set(get_protocol("pirm2018").metrics))
    assert "lpips" in extra
    listed = help_text.split("beyond the protocol's: ")[1].split(" or a plugin's")[0]
    assert listed.split(", ") == extra
