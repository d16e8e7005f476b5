"""Atomic writes: a reader sees the old file or the complete new one, never a part, and no temporary stays."""

from __future__ import annotations

import pytest

from mgsr.io.atomic import atomic_file, atomic_path, atomic_text


def test_atomic_file_replaces_the_target_only_when_the_block_ends_cleanly(tmp_path):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with atomic_file(target) as out:
        out.write(b"new, ")
        assert target.read_bytes() == b"old"  # mid-write, readers still see the old version
        out.write(b"complete")
    assert target.read_bytes() == b"new, complete"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


def test_an_exception_in_the_block_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "data.bin"
    target.write_bytes(b"old")
    with pytest.raises(ValueError, match="refused"), atomic_file(target) as out:
        out.write(b"half")
        raise ValueError("refused after the last piece")  # as a download whose hash does not match
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.bin"]


def test_atomic_path_names_the_temporary_with_the_suffix_asked_for(tmp_path):
    with atomic_path(tmp_path / "model.xml", suffix=".xml") as tmp:
        assert tmp.parent == tmp_path and tmp.name.endswith(".xml") and tmp.name.startswith(".model.xml.")
        tmp.write_text("<net/>")
    assert (tmp_path / "model.xml").read_text() == "<net/>" and not tmp.exists()


def test_atomic_text_writes_utf8_with_the_newline_asked_for_and_keeps_the_old_file_on_failure(tmp_path):
    target = tmp_path / "table.csv"
    with atomic_text(target, newline="") as out:
        out.write("W,détail\r\n")
        assert not target.exists()
    assert target.read_bytes() == "W,détail\r\n".encode()
    with pytest.raises(ValueError, match="half"), atomic_text(target) as out:
        out.write("half a table\n")
        raise ValueError("half")
    assert target.read_bytes() == "W,détail\r\n".encode()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["table.csv"]
