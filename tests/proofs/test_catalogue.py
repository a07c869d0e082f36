"""``proofs/catalogue.py`` and the committed ``CLAIMS.md``: in step with the registry."""

from __future__ import annotations

from pathlib import Path

from proofs.catalogue import parse_catalogue, render_catalogue
from proofs.registry import load_all
from proofs.report import PAPERS

CLAIMS_MD = Path(__file__).resolve().parents[2] / "CLAIMS.md"
REGEN = "regenerate it: stnlab prove --catalogue CLAIMS.md"


def test_committed_catalogue_matches_the_registry():
    text = CLAIMS_MD.read_text()
    got = parse_catalogue(text)
    want = {cid: c.statement for cid, c in load_all().items()}
    assert sorted(got) == sorted(want), f"CLAIMS.md ids differ from the registry; {REGEN}"
    wrong = [cid for cid in want if got[cid] != want[cid]]
    assert not wrong, f"CLAIMS.md statements differ for {wrong}; {REGEN}"
    for ref in PAPERS.values():
        assert ref in text


def test_rendered_catalogue_round_trips_and_lists_checks(tmp_path):
    text = render_catalogue(report=tmp_path / "no-report.json")
    claims = load_all()
    assert parse_catalogue(text) == {cid: c.statement for cid, c in claims.items()}
    assert "`error_order` (quick, full)" in text and "21.8 %" in text


def test_the_parser_sees_a_changed_statement():
    text = render_catalogue()
    broken = text.replace("**Statement.** With linearized", "**Statement.** With linearised")
    assert parse_catalogue(broken)["EMP-3"] != load_all()["EMP-3"].statement


def test_every_check_says_what_it_judges():
    """The catalogue's "How it is checked" line comes from each check's docstring: none may
    be missing (17 were, in EMP-2/3/4, GEO-1, GEO-3, SMP-5, before this test)."""
    from proofs.catalogue import _check_doc

    missing = [f"{cid}/{ch.name}" for cid, c in load_all().items() for ch in c.checks
               if not _check_doc(ch.fn)]
    assert not missing, f"checks without a docstring: {missing}"
    assert "(no docstring)" not in render_catalogue()
