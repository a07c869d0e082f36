"""`stnlab prove`: options, report.md / report.json, exit status, progress on stderr."""

from __future__ import annotations

import json

import pytest

from proofs import cli
from proofs import registry as reg
from proofs.registry import Evidence
from proofs.run import parse_only


def _run(args, capsys):
    rc = cli.main(["prove", *args])
    out = capsys.readouterr()
    return rc, out.out, out.err


def test_quick_only_writes_report(tmp_path, capsys):
    out = tmp_path / "o"
    rc, stdout, stderr = _run(
        ["--quick", "--only", "INV-1,INV-7", "--only", "inv-4", "--out", str(out)], capsys
    )
    assert rc == 0, stderr
    doc = json.loads((out / "report.json").read_text())
    ids = {c["id"]: c for c in doc["claims"]}
    for c in doc["claims"]:
        assert {"id", "statement", "source", "status", "evidence"} <= set(c)
        assert c["status"] in ("verified", "failed", "not run")
    assert ids["INV-1"]["status"] == "verified" and ids["INV-7"]["status"] == "verified"
    assert ids["INV-2"]["status"] == "not run"  # not selected: never verified
    assert ids["INV-2"]["evidence"][0]["summary"] == "not selected"
    md = (out / "report.md").read_text()
    assert "| claim | statement | status | key numbers | figure |" in md
    assert "| INV-1 |" in md and "figures/inv4_channel_shift.png" in md
    assert (out / "figures" / "inv4_channel_shift.png").stat().st_size > 0
    assert "[1/" in stderr and "ETA" in stderr and "INV-1" in stderr  # progress lines
    assert "verified" in stdout


def test_json_summary(tmp_path, capsys):
    rc, stdout, _ = _run(["--quick", "--only", "INV-7", "--out", str(tmp_path), "--json"], capsys)
    assert rc == 0
    doc = json.loads(stdout)
    assert doc["summary"]["verified"] >= 1
    assert {"id": "INV-7", "status": "verified"}.items() <= next(
        c for c in doc["claims"] if c["id"] == "INV-7"
    ).items()


def test_failing_check_exits_1(tmp_path, capsys, monkeypatch):
    claim = reg.load_all()["INV-7"]
    broken = reg.Check("broken", lambda ctx: Evidence.compare("x", 1.0, "<=", 0.0), reg.PROVE_SCALES)
    monkeypatch.setattr(claim, "checks", [*claim.checks, broken])
    rc, stdout, _ = _run(["--quick", "--only", "INV-7", "--out", str(tmp_path)], capsys)
    assert rc == 1
    doc = json.loads((tmp_path / "report.json").read_text())
    assert next(c for c in doc["claims"] if c["id"] == "INV-7")["status"] == "failed"
    assert "**FAILED**" in (tmp_path / "report.md").read_text()


def test_crashing_check_is_failed_not_verified(tmp_path, capsys, monkeypatch):
    claim = reg.load_all()["INV-7"]

    def boom(ctx):
        raise RuntimeError("kaput")

    monkeypatch.setattr(claim, "checks", [reg.Check("boom", boom, reg.PROVE_SCALES)])
    rc, _, _ = _run(["--quick", "--only", "INV-7", "--out", str(tmp_path)], capsys)
    assert rc == 1
    ev = json.loads((tmp_path / "report.json").read_text())
    inv7 = next(c for c in ev["claims"] if c["id"] == "INV-7")
    assert inv7["status"] == "failed" and "kaput" in inv7["evidence"][0]["summary"]


def test_unknown_claim_is_usage_error(tmp_path, capsys):
    rc, _, stderr = _run(["--only", "INV-99", "--out", str(tmp_path)], capsys)
    assert rc == 2 and "stnlab prove: error: --only" in stderr and "INV-99" in stderr


def test_out_must_be_directory(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    rc, _, stderr = _run(["--only", "INV-7", "--out", str(f)], capsys)
    assert rc == 2 and "--out" in stderr


def test_parse_only():
    assert parse_only(None) is None
    assert parse_only(["inv-4, GEO-1", "INV-4"]) == ["INV-4", "GEO-1"]
    with pytest.raises(ValueError, match="--only"):
        parse_only([" , "])


def test_help(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["prove", "--help"])
    assert e.value.code == 0
    assert "--quick" in capsys.readouterr().out


def test_a_failing_figure_does_not_change_the_verdict(tmp_path, capsys):
    from proofs.registry import CheckContext

    ctx = CheckContext(out_dir=tmp_path)

    def broken(data, path):
        raise RuntimeError("no ink")

    assert ctx.draw("x.png", broken, {}) is None
    assert "figure x.png not drawn: RuntimeError: no ink" in capsys.readouterr().err

    def ok(data, path):
        path.write_bytes(b"png")

    assert ctx.draw("y.png", ok, {}) == "figures/y.png"
    assert (tmp_path / "figures" / "y.png").read_bytes() == b"png"


def test_device_is_checked_before_any_check_runs(tmp_path, capsys):
    rc, _, stderr = _run(["--device", "tpu", "--only", "GEO-1", "--out", str(tmp_path)], capsys)
    assert rc == 2 and "--device: expected cpu or cuda[:i], got 'tpu'" in stderr
    assert not (tmp_path / "report.json").exists()
