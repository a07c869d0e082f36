"""`stnlab prove`: options, report.md / report.json, exit status, progress on stderr."""

from __future__ import annotations

import json
import re

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
        assert c["status"] in reg.STATUSES
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
    broken = reg.Check("broken", lambda ctx: Evidence.compare("x", 1.0, "<=", 0.0, tolerance="a priori"),
                       reg.PROVE_SCALES)
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


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_unwritable_out_fails_before_any_check_runs(tmp_path, capsys, monkeypatch, where):
    import proofs.run

    (tmp_path / "file").write_text("x")
    out = {"under_a_file": tmp_path / "file" / "report",  # a parent is a file
           "proc": "/proc/stnlab-prove-out"}[where]  # mkdir fails, also for root
    ran = []
    monkeypatch.setattr(proofs.run, "run_claims", lambda *a, **k: ran.append(1) or [])
    rc, _, stderr = _run(["--out", str(out)], capsys)
    assert rc == 2 and not ran
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "--out" in lines[0] and str(out) in lines[0], lines


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


# --- seeds, statuses, the report's readability, records found from any directory ---

@pytest.fixture
def toy(monkeypatch):
    """A registry of toy claims (no claim modules imported)."""
    monkeypatch.setattr(reg, "_REGISTRY", {})
    monkeypatch.setattr(reg, "CLAIM_MODULES", [])
    return reg


def test_seeds_option_and_per_seed_numbers_in_report_json(toy, tmp_path, capsys):
    toy.claim("TST-1", "holds in every seed", source="here")
    seen = []

    @toy.check("TST-1", name="identity")
    def _identity(ctx):
        seen.append(ctx.seeds)
        return Evidence.over_seeds("err", {s: 1e-9 * (1 + s % 7) for s in ctx.seeds}, "<=",
                                   1e-6, tolerance="derived: 1e3 ulp")

    rc, _, _ = _run(["--seed", "3", "--seeds", "3", "--out", str(tmp_path)], capsys)
    assert rc == 0 and seen == [(3, 1003, 2003)]
    doc = json.loads((tmp_path / "report.json").read_text())
    assert doc["meta"]["seeds"] == [3, 1003, 2003]
    num = doc["claims"][0]["evidence"][0]["numbers"]["err"]
    assert set(num["per_seed"]) == {"3", "1003", "2003"} and num["min"] <= num["median"]
    md = (tmp_path / "report.md").read_text()
    assert "(min / median / max, 3 seeds)" in md and "seeds 3, 1003, 2003" in md
    _run(["--quick", "--out", str(tmp_path)], capsys)
    assert seen[-1] == (0, 1000)  # default: 2 seeds with --quick
    _run(["--out", str(tmp_path)], capsys)
    assert seen[-1] == (0, 1000, 2000, 3000, 4000)  # 5 for the full run
    rc, _, err = _run(["--seeds", "0", "--out", str(tmp_path)], capsys)
    assert rc == 2 and "--seeds: expected a positive int, got 0" in err


@pytest.mark.parametrize("statuses, rc", [
    (("verified",), 0), (("inconclusive",), 0), (("not run",), 0),
    (("verified", "inconclusive", "not run"), 0), (("inconclusive", "failed"), 1),
])
def test_exit_status_is_1_only_when_something_failed(toy, tmp_path, capsys, statuses, rc):
    make = {"verified": lambda i: Evidence.compare(f"v{i}", 0, "<", 1, tolerance="a priori"),
            "failed": lambda i: Evidence.compare(f"f{i}", 2, "<", 1, tolerance="a priori"),
            "inconclusive": lambda i: Evidence.inconclusive("interval contains 0"),
            "not run": lambda i: Evidence.not_run("no records")}
    for i, s in enumerate(statuses):
        toy.claim(f"TST-{i}", s, source="here")
        toy.check(f"TST-{i}", name="c")(lambda ctx, s=s, i=i: make[s](i))
    got, _, _ = _run(["--out", str(tmp_path)], capsys)
    assert got == rc
    doc = json.loads((tmp_path / "report.json").read_text())
    assert [c["status"] for c in doc["claims"]] == list(statuses)
    assert set(doc["summary"]) == {"verified", "failed", "inconclusive", "not run"}


def test_report_rows_name_papers_failures_reasons_and_det_convention(toy, tmp_path, capsys):
    toy.claim("TST-1", "two parts", source="000 Table I")
    toy.claim("TST-2", "needs records", source="003")

    @toy.check("TST-1", name="parts")
    def _parts(ctx):
        return Evidence.all_of([
            Evidence.compare("fine", 0.1, "<", 1, tolerance="a priori"),
            Evidence.compare("mean det", 1.32, "<", 1.1, tolerance="derived: 1 + 0.1")])

    toy.check("TST-1", name="other")(
        lambda ctx: Evidence.compare("unrelated", 0.5, "<", 1, tolerance="a priori"))
    toy.check("TST-2", name="emp")(lambda ctx: Evidence.not_run("records missing: none under X"))
    rc, out, _ = _run(["--out", str(tmp_path)], capsys)
    assert rc == 1
    md = (tmp_path / "report.md").read_text()
    for code, who in (("000", "Finnveden"), ("003", "Jiang"), ("004", "Meethal")):
        assert f"**{code}** = " in md and who in md
    row1 = next(ln for ln in md.splitlines() if ln.startswith("| TST-1 |"))
    assert "parts: mean det [det of input_from_output θ] = 1.32 (needs mean det < 1.1)" in row1
    assert "fine" not in row1 and "unrelated" not in row1  # only the failing sub-check's
    row2 = next(ln for ln in md.splitlines() if ln.startswith("| TST-2 |"))
    assert "records missing: none under X" in row2
    assert "TST-2  not run -- records missing: none under X" in out
    assert "Determinants [det of input_from_output θ]: matrices are input_from_output" in md


def test_committed_records_are_found_from_any_working_directory(tmp_path):
    from tests.stnlab_proc import ROOT, run_stnlab, sandbox_env

    env = sandbox_env(tmp_path)
    env.pop("STNLAB_RESULTS", None)
    proc = run_stnlab(tmp_path, "prove", "--only", "EMP-1", "--quick", "--out", "o", env=env)
    from proofs.claims.empirical import suite_dir
    from proofs.registry import CheckContext

    committed = suite_dir(CheckContext(out_dir=tmp_path, results_dir=ROOT / "results"))
    assert committed is not None  # the repository holds an MNIST suite
    assert proc.returncode in (0, 1), proc.stderr
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("EMP-1 "))
    assert "not run" not in line, line
    doc0 = json.loads((tmp_path / "o" / "report.json").read_text())
    first = next(c for c in doc0["claims"] if c["id"] == "EMP-1")["evidence"][0]
    if first["provenance"]["results"] != "results/mnist-emp1-r":  # unplanned: held
        assert "inconclusive" in line, line
    doc = json.loads((tmp_path / "o" / "report.json").read_text())
    emp1 = next(c for c in doc["claims"] if c["id"] == "EMP-1")
    prov = emp1["evidence"][0]["provenance"]
    # EMP-1 reads the pre-registered suite once its runs are committed, else the largest
    # unplanned one (blocked by the protocol)
    assert prov["results"] in (f"results/{committed.name}", "results/mnist-emp1-r")
    assert doc["meta"]["results"] == str(ROOT / "results")
    # no records where $STNLAB_RESULTS points: the line says so
    empty = tmp_path / "empty"
    empty.mkdir()
    proc = run_stnlab(tmp_path, "prove", "--only", "EMP-1", "--quick", "--out", "o",
                      env={**env, "STNLAB_RESULTS": str(empty)})
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^EMP-1 +not run -- records missing: no trained runs", proc.stdout,
                     re.M), proc.stdout
    assert str(empty) in proc.stdout
