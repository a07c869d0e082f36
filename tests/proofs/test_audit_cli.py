"""``stnlab audit``: a small end-to-end run writes audit.json / audit.md / figures, and every
bad input is one line on stderr with exit status 2."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn as nn

from invariance.extractors import random_cnn
from proofs.cli import main

HERE = "tests.proofs.test_audit_cli"


def tiny_cnn() -> nn.Module:
    """A factory for ``MODEL = package.module:factory``."""
    return random_cnn(2, 4, pool_after=(0,), seed=0)


def no_maps() -> nn.Module:
    return nn.Sequential(nn.Flatten(), nn.Linear(16 * 16, 3))


def not_a_module():
    return 3


@pytest.fixture()
def images_pt(tmp_path):
    p = tmp_path / "imgs.pt"
    torch.save(torch.rand(6, 1, 16, 16, generator=torch.Generator().manual_seed(0)), p)
    return p


def _err_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    err = [ln for ln in err if not ln.startswith("stnlab audit: ") or "error" in ln]
    assert len(err) == 1, err
    return err[0]


def test_end_to_end_writes_json_markdown_and_figures(tmp_path, images_pt, capsys):
    out = tmp_path / "a"
    argv = ["audit", f"{HERE}:tiny_cnn", "--images", str(images_pt), "--n", "6",
            "--transforms", "rot90,rot30,scale1.41", "--search", "none", "--out", str(out)]
    assert main(argv) == 0
    d = json.loads((out / "audit.json").read_text())
    assert d["schema"] == "stnlab.audit/1" and d["meta"]["n_images"] == 6
    assert {r["transform"] for r in d["rows"]} >= {"rot90", "scale1.41", "lie:rot"}
    assert "## Where an ST could live" in (out / "audit.md").read_text()
    for f in ("audit_heatmap.png", "audit_vs_angle.png", "audit_vs_log_scale.png"):
        assert (out / f).stat().st_size > 1000
    printed = capsys.readouterr()
    assert "rot90: spatially: deepest alignable" in printed.out
    assert "[1/3] rot90" in printed.err  # progress lines
    first = (out / "audit.json").read_bytes()
    assert main(argv) == 0
    assert (out / "audit.json").read_bytes() == first  # same seed: byte-identical


def test_state_dict_file_with_factory(tmp_path, images_pt):
    sd = tmp_path / "w.pt"
    torch.save(tiny_cnn().state_dict(), sd)
    out = tmp_path / "b"
    assert main(["audit", str(sd), "--factory", f"{HERE}:tiny_cnn", "--images",
                 str(images_pt), "--transforms", "rot90", "--modes", "spatial", "--search",
                 "none", "--no-figures", "--out", str(out)]) == 0
    assert (out / "audit.json").exists()


@pytest.mark.parametrize("argv_tail, needle", [
    (["nosuchmodel"], "MODEL: expected a built-in name"),
    ([f"{HERE}:missing_factory"], "has no factory 'missing_factory'"),
    (["tests.proofs.no_such_module:f"], "cannot import module"),
    ([f"{HERE}:not_a_module"], "expected an nn.Module"),
    ([f"{HERE}:no_maps"], "no module with a 4-D"),
    ([f"{HERE}:tiny_cnn", "--size", "big"], "--size: expected auto or a positive integer"),
    ([f"{HERE}:tiny_cnn", "--transforms", "spin"], "expected transforms like"),
    ([f"{HERE}:tiny_cnn", "--images", "nowhere"], "--images: expected mnist, skimage"),
])
def test_bad_input_is_one_line_exit_2(argv_tail, needle, images_pt, capsys):
    argv = ["audit", *argv_tail]
    if "--images" not in argv:
        argv += ["--images", str(images_pt)]
    assert main(argv + ["--n", "6", "--search", "none", "--no-figures"]) == 2
    line = _err_line(capsys)
    assert line.startswith("stnlab audit: error: ") and needle in line, line


def test_state_dict_that_does_not_match(tmp_path, images_pt, capsys):
    sd = tmp_path / "w.pt"
    torch.save(random_cnn(3, 5).state_dict(), sd)
    assert main(["audit", str(sd), "--factory", f"{HERE}:tiny_cnn", "--images",
                 str(images_pt)]) == 2
    assert "does not match the network" in _err_line(capsys)
    assert main(["audit", str(sd), "--images", str(images_pt)]) == 2
    assert "expected --factory" in _err_line(capsys)


def test_pickled_module_needs_trust(tmp_path, images_pt, capsys):
    p = tmp_path / "m.pt"
    torch.save(tiny_cnn(), p)
    assert main(["audit", str(p), "--images", str(images_pt)]) == 2
    assert "needs --trust" in _err_line(capsys)


def test_wrong_channels_and_non_image_files(tmp_path, capsys):
    rgb = tmp_path / "rgb.pt"
    torch.save(torch.rand(6, 3, 16, 16), rgb)
    assert main(["audit", f"{HERE}:tiny_cnn", "--images", str(rgb)]) == 2
    assert "expected images with 1 channels" in _err_line(capsys)
    txt = tmp_path / "notes.txt"
    txt.write_text("not an image")
    assert main(["audit", f"{HERE}:tiny_cnn", "--images", str(txt)]) == 2
    assert "is not a tensor file" in _err_line(capsys)
    d = tmp_path / "dir"
    d.mkdir()
    (d / "broken.png").write_bytes(b"\x89PNG not really")
    assert main(["audit", f"{HERE}:tiny_cnn", "--images", str(d)]) == 2
    assert "is not a readable image" in _err_line(capsys)
    assert main(["audit", f"{HERE}:tiny_cnn", "--images", "mnist", "--n", "2"]) == 2
    assert "--n: expected at least 4" in _err_line(capsys)


def test_a_train_checkpoint_with_stacked_seed_parameters(tmp_path, images_pt):
    """``stnlab train`` saves ``{"params": {name: (S, ...)}, ...}``: the first seed is used."""
    sd = {k: torch.stack([v, v + 1]) for k, v in tiny_cnn().state_dict().items()}
    ck = tmp_path / "checkpoint.pt"
    torch.save({"format": 1, "params": sd}, ck)
    out = tmp_path / "c"
    assert main(["audit", str(ck), "--factory", f"{HERE}:tiny_cnn", "--images", str(images_pt),
                 "--transforms", "shift2", "--modes", "spatial", "--search", "none",
                 "--no-figures", "--out", str(out)]) == 0
    assert "seed index 0" in json.loads((out / "audit.json").read_text())["meta"]["model"]
