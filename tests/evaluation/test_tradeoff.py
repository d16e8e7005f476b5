"""Sweeps and calibration: noise lists, the bisection and its bracket checks, the CSV and the plot."""

from __future__ import annotations

import csv
import math

import pytest

from mgsr.errors import EvaluationError
from mgsr.evaluation.scoring import Evaluation, write_json
from mgsr.evaluation.tradeoff import SweepPoint, calibrate, parse_noise_values, plot_sweep, write_sweep_csv


def test_noise_values():
    assert parse_noise_values("0:1:5") == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert len(parse_noise_values("0:1:21")) == 21
    assert parse_noise_values("1,0,0.5,0.5") == [0.0, 0.5, 1.0]
    for bad in ("0:1", "a,b", "0:1:0", "-1,2", "nan"):
        with pytest.raises(EvaluationError, match="--noise"):
            parse_noise_values(bad)


def test_calibration_finds_where_a_monotone_curve_crosses_the_budget():
    result = calibrate(lambda w: 10 + 4 * w, max_rmse=11.5, tolerance=1e-4)  # crosses at W = 0.375
    assert result.noise == pytest.approx(0.375, abs=1e-4) and result.noise <= 0.375
    assert result.rmse <= 11.5 and result.monotone and not result.warnings
    assert result.evaluated[:2] == ((0.0, 10.0), (1.0, 14.0))  # both ends first
    assert len(result.evaluated) == 2 + math.ceil(math.log2(1 / 1e-4))


def test_a_budget_that_cannot_be_met_is_an_error():
    with pytest.raises(EvaluationError, match=r"cannot be met.*12\.0000.*W=0"):
        calibrate(lambda w: 12 + w, max_rmse=11.5)


def test_a_budget_met_at_the_high_end_returns_it_and_says_so():
    result = calibrate(lambda w: 10 + w, max_rmse=11.5)
    assert result.noise == 1.0 and len(result.evaluated) == 2
    assert "widen the bracket" in result.warnings[0]


def test_a_curve_that_is_not_monotone_is_reported():
    bumpy = lambda w: 10 + 4 * w + (3 if 0.2 < w < 0.3 else 0)  # noqa: E731 - a dip back below the budget later
    result = calibrate(bumpy, max_rmse=11.5)
    assert not result.monotone
    assert any("not monotone" in w for w in result.warnings)
    assert bumpy(result.noise) <= 11.5


def evaluation(rmse: float, niqe: float) -> Evaluation:
    return Evaluation(
        {"name": "pirm2018"},
        ("rmse", "niqe"),
        {"rmse": False, "niqe": False},
        (),
        {"rmse": rmse, "niqe": niqe},
        ("a note",),
    )


def test_sweep_csv_and_plot(tmp_path):
    points = [SweepPoint(w, evaluation(10 + w, 6 - 2 * w)) for w in (0.0, 0.5, 1.0)]
    write_sweep_csv(tmp_path / "s.csv", points, {"model": "pirm-r3"})
    lines = (tmp_path / "s.csv").read_text().splitlines()
    assert lines[0].startswith("# mgsr sweep:") and '"pirm2018"' in lines[1] and lines[2] == "# note: a note"
    rows = list(csv.DictReader(line for line in lines if not line.startswith("#")))
    assert [float(r["noise"]) for r in rows] == [0.0, 0.5, 1.0]
    assert [float(r["rmse"]) for r in rows] == [10.0, 10.5, 11.0]
    plot_sweep(tmp_path / "s.png", points, "test")
    assert (tmp_path / "s.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_results_are_written_atomically_and_a_failure_names_the_file(tmp_path, monkeypatch):
    """CSV, plot and JSON go through mgsr.io.atomic: no temporary stays, and a failed write leaves the old file."""
    import mgsr.io.atomic

    points = [SweepPoint(w, evaluation(10 + w, 6 - 2 * w)) for w in (0.0, 1.0)]
    write_sweep_csv(tmp_path / "s.csv", points, {"model": "pirm-r3"})
    plot_sweep(tmp_path / "s.png", points, "test")
    write_json(tmp_path / "s.json", {"noise": 0.5})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.csv", "s.json", "s.png"]
    assert (tmp_path / "s.json").read_text() == '{\n  "noise": 0.5\n}\n'
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def refuse(tmp, target, durable=False):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(mgsr.io.atomic, "publish", refuse)
    for write in (
        lambda: write_sweep_csv(tmp_path / "s.csv", points, {"model": "other"}),
        lambda: plot_sweep(tmp_path / "s.png", points, "other"),
        lambda: write_json(tmp_path / "s.json", {"noise": 1.0}),
    ):
        with pytest.raises(EvaluationError, match=r"s\.\w+: cannot write \(Permission denied\)"):
            write()
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
