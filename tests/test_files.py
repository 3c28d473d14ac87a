"""Atomic writes: the whole file or the old one, with the permissions a plain open would give."""

from __future__ import annotations

import os

import numpy as np
import pytest

from facesteer.files import atomic_path, write_json
from facesteer.images import save_png


def test_atomic_writes_get_the_umasks_permissions_not_the_temporary_files(tmp_path):
    """mkstemp makes 0600 files: exports and PNGs in a shared folder were unreadable to anyone else."""
    umask = os.umask(0o022)
    os.umask(umask)
    expected = 0o666 & ~umask
    written = [write_json(tmp_path / "a.json", {"x": 1}), save_png(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))]
    for path in written:
        assert path.stat().st_mode & 0o777 == expected, oct(path.stat().st_mode)
    os.umask(0o077)  # tightened after import (a daemon, say): the next file follows it
    try:
        assert write_json(tmp_path / "private.json", {}).stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(umask)


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "kept.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("killed mid-write")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["kept.txt"]


def test_safetensors_files_are_the_same_bytes_from_any_process(tmp_path):
    """The safetensors library orders metadata keys differently in each process; a file's sha256 names weights."""
    import subprocess
    import sys

    from safetensors import safe_open

    script = (
        "import sys, torch; from facesteer.files import write_safetensors; "
        "write_safetensors(sys.argv[1], {'b': torch.arange(6.0).reshape(2, 3), 'a': torch.ones(2, dtype=torch.int64)}, "
        "{'format': 'x', 'config': '{}', 'card': 'café', 'seed': '1'})"
    )
    paths = [tmp_path / f"{i}.safetensors" for i in range(4)]
    for path in paths:
        subprocess.run([sys.executable, "-c", script, str(path)], check=True)
    assert len({path.read_bytes() for path in paths}) == 1
    with safe_open(str(paths[0]), framework="pt") as f:
        assert f.metadata() == {"format": "x", "config": "{}", "card": "café", "seed": "1"}
        assert f.get_tensor("b")[1, 2] == 5 and f.get_tensor("a").dtype.is_floating_point is False


def test_a_staged_folder_is_all_or_none(tmp_path):
    """invert wrote its PNGs and generators one by one: a failure midway left new files beside old codes.npy."""
    from facesteer.files import staged_folder

    out = tmp_path / "inv"
    out.mkdir()
    (out / "a.png").write_bytes(b"old a")
    (out / "codes.npy").write_bytes(b"old codes")
    with pytest.raises(RuntimeError), staged_folder(out) as staging:
        (staging / "a.png").write_bytes(b"new a")
        raise RuntimeError("disk full before codes.npy")
    assert (out / "a.png").read_bytes() == b"old a" and sorted(p.name for p in tmp_path.iterdir()) == ["inv"]
    with staged_folder(out) as staging:
        (staging / "a.png").write_bytes(b"new a")
        (staging / "codes.npy").write_bytes(b"new codes")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == {"a.png": b"new a", "codes.npy": b"new codes"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["inv"]


def test_strict_json_writes_null_for_what_json_cannot_hold():
    import json
    import math

    from facesteer.files import strict_json

    text = strict_json({"auroc": math.nan, "scores": [1.5, math.inf, -math.inf], "nested": {"x": (math.nan,)}})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in {text}")) == {
        "auroc": None,
        "scores": [1.5, None, None],
        "nested": {"x": [None]},
    }
