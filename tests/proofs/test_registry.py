"""``proofs.registry``: scales declared per check, no silent duplicates, no silent import errors."""

from __future__ import annotations

import pytest

from proofs import registry as reg


@pytest.fixture
def fresh(monkeypatch):
    monkeypatch.setattr(reg, "_REGISTRY", {})
    reg.claim("TST-1", "a test claim", source="here")
    return reg


def test_a_check_runs_only_at_its_declared_scales(fresh, tmp_path, monkeypatch):
    @fresh.check("TST-1", scales=("full",), name="full_only")
    def _full(ctx):
        return fresh.Evidence.compare("x", 1.0, "<", 2.0)

    @fresh.check("TST-1", scales=("quick", "full"), name="both")
    def _both(ctx):
        return fresh.Evidence.compare("x", 1.0, "<", 2.0)

    monkeypatch.setattr(fresh, "CLAIM_MODULES", [])
    quick = fresh.run_claims(fresh.CheckContext(out_dir=tmp_path, quick=True))
    full = fresh.run_claims(fresh.CheckContext(out_dir=tmp_path, quick=False))
    assert [e["status"] for e in quick[0]["evidence"]] == ["not run", "verified"]
    assert quick[0]["status"] == "not run"
    assert [e["status"] for e in full[0]["evidence"]] == ["verified", "verified"]


def test_a_second_check_under_one_name_is_an_error(fresh):
    @fresh.check("TST-1", name="same")
    def _a(ctx):
        return None

    with pytest.raises(ValueError, match="TST-1 already has a check named 'same'"):
        @fresh.check("TST-1", name="same")
        def _b(ctx):
            return None


def test_unknown_scale_is_an_error(fresh):
    with pytest.raises(ValueError, match=r"check: expected scales from .*got \('tiny',\)"):
        fresh.check("TST-1", scales=("tiny",))


def test_a_claim_module_that_fails_to_import_is_an_error(monkeypatch):
    monkeypatch.setattr(reg, "CLAIM_MODULES", ["proofs.claims.no_such_claims_module"])
    with pytest.raises(ModuleNotFoundError):
        reg.load_all()
