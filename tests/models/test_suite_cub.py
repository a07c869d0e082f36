"""The CUB suite of 004 (models/suites/cub.py): names, presets, the CLI end to end, report."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from models.errors import ConfigError
from models.suites import DataSource, Suite, get_suite
from models.suites.cub import (
    LAMBDA_DEFAULT,
    NETS,
    NETS_BY_SCALE,
    CubConfig,
    LocSet,
    net_spec,
    preset,
)
from proofs.cli import main

from .test_data_cub import write_cub


def test_registered_with_its_nets_and_variants():
    s = get_suite("cub")
    assert isinstance(s, Suite)
    assert s.variants == ("standin", "standin-v2", "CUB") and s.nets == NETS
    assert set(NETS_BY_SCALE["small"]) == {"CSTN", "CSTN-lam0", "no-CSTN", "CAM"}
    assert set(NETS_BY_SCALE["medium"]) >= {"CSTN-lam0", "CSTN-lam1e-5", "CSTN-lam1e-3",
                                              "CSTN-lam1e-2", "CSTN-fine", "CSTN-coarse"}
    assert s.variants_for(DataSource("standin")) == ("standin",)
    assert s.default_seeds("medium") == 3


@pytest.mark.parametrize("net, build, lam", [
    ("CSTN", "CSTN", LAMBDA_DEFAULT), ("CSTN-lam0", "CSTN", 0.0),
    ("CSTN-lam1e-5", "CSTN", 1e-5), ("CSTN-lam1e-2", "CSTN", 1e-2),
    ("CSTN-coarse", "CSTN-coarse", LAMBDA_DEFAULT), ("no-CSTN", "no-CSTN", None),
    ("CAM", "CAM", None)])
def test_net_names_carry_lambda(net, build, lam):
    assert net_spec(net) == {"build": build, "lam": lam}


@pytest.mark.parametrize("net", ["CSTN-lam-1", "CSTN-lamx", "CSTN-laminf", "STN-C0", ""])
def test_bad_net_names_are_one_line_errors(net):
    with pytest.raises(ConfigError, match=r"net_spec: expected net in .* got"):
        preset("smoke", "standin", net)


def test_preset_checks_keys_and_values():
    with pytest.raises(ConfigError, match=r"preset: unknown config keys \['nope'\]"):
        preset("smoke", "standin", "CSTN", nope=1)
    with pytest.raises(ConfigError, match=r"CubConfig: expected optimizer 'adam' or 'sgd', "
                                          r"got 'rmsprop'"):
        preset("smoke", "standin", "CSTN", optimizer="rmsprop")
    with pytest.raises(ConfigError, match=r"CubConfig: expected variant in"):
        preset("smoke", "R", "CSTN")
    c = preset("smoke", "CUB", "CSTN-lam0", seeds=(0, 1))
    assert c.image_size == 320 and c.num_classes == 200 and c.lam == 0.0
    assert CubConfig.from_json(json.loads(json.dumps(c.to_json()))) == c


def test_the_suite_needs_an_explicit_source(tmp_path, capsys):
    code = main(["train", "--suite", "cub", "--scale", "smoke", "--out", str(tmp_path / "o")])
    assert code == 2
    assert "--data: the cub suite needs --data DIR" in capsys.readouterr().err


def _finite(x):
    if isinstance(x, dict):
        return all(_finite(v) for v in x.values())
    if isinstance(x, list):
        return all(_finite(v) for v in x)
    return not isinstance(x, float) or np.isfinite(x)


def test_smoke_run_through_the_cli_and_report(tmp_path, capsys):
    out = tmp_path / "cub-smoke"
    assert main(["train", "--suite", "cub", "--scale", "smoke", "--data", "standin",
                 "--out", str(out), "--quiet", "--drop-checkpoints"]) == 0
    index = json.loads((out / "suite.json").read_text())
    assert index["suite"] == "cub" and index["scale"] == "smoke"
    assert set(index["runs"]["standin"]) == set(NETS_BY_SCALE["smoke"])
    for net, r in index["runs"]["standin"].items():
        assert _finite(r["loc"]) and _finite(r["train"]["final_loss"]), net
        assert r["standin"] and r["dataset"].startswith("cub-standin")
        assert "pretrained" in r["backbone"]
    assert "untransformed" in index["runs"]["standin"]["CSTN"]
    assert "untransformed" not in index["runs"]["standin"]["CAM"]
    assert not list(out.glob("*/*/checkpoint*.pt"))
    capsys.readouterr()
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    for needle in ("Table I", "Table II", "Table III", "Table IV", "Fig. 6", "paper",
                   "(a stand-in, not CUB-200-2011)", "scale: smoke", "seeds per network: 1",
                   "Backbone deviation", "| 40.64 |", "| 49.03 |", "71.13"):
        assert needle in text, needle
    rep = json.loads((out / "report.json").read_text())
    assert rep["name"] == "cub" and rep["paper"]["table_ii"]["CSTN"]["top1_loc"] == 49.03
    g = np.load(out / "standin" / "CSTN" / "gallery.npz")
    assert g["images"].dtype == np.uint8 and g["box"].shape == g["rf_box"].shape


def test_cli_on_cub_files_in_the_official_layout(tmp_path, capsys):
    write_cub(tmp_path / "data")
    out = tmp_path / "o"
    assert main(["train", "--suite", "cub", "--scale", "smoke", "--data", str(tmp_path / "data"),
                 "--net", "CSTN,CAM", "--out", str(out), "--quiet"]) == 0
    r = json.loads((out / "CUB" / "CSTN" / "metrics.json").read_text())
    assert r["dataset"] == "CUB-200-2011" and not r["standin"]
    assert r["test"]["images"] == 2  # the fixture's two test images
    capsys.readouterr()
    assert main(["report", str(out), "--no-figures"]) == 0
    assert "on CUB-200-2011" in capsys.readouterr().out


def test_standin_variant_refuses_a_directory(tmp_path, capsys):
    write_cub(tmp_path / "data")
    code = main(["train", "--suite", "cub", "--scale", "smoke", "--variant", "standin",
                 "--data", str(tmp_path / "data"), "--out", str(tmp_path / "o"), "--quiet"])
    assert code == 2
    assert "load_data: expected --data standin for variant 'standin'" in capsys.readouterr().err


def test_locset_batches_follow_the_generators():
    g = torch.Generator().manual_seed(0)
    s = LocSet(torch.randn(10, 3, 16, 16, generator=g), torch.arange(10),
               torch.zeros(10, 4), "x", flip=True)
    a = s.train_batches(4, [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)])
    b = s.train_batches(4, [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)])
    assert a[0].shape == (2, 4, 3, 16, 16) and torch.equal(a[0], b[0])
    assert torch.equal(a[1], b[1]) and not torch.equal(a[1][0], a[1][1])


def test_untransformed_ablation_scores_the_receptive_field_box():
    """theta_l = 10 x identity makes every transformed box the whole 96 px image (after
    clipping) while the receptive-field boxes stay 24 / 48 px squares (IoU with the whole
    image <= 48^2 / 96^2 = 0.25): GT-known Loc must be 1 transformed and 0 untransformed."""
    from models.suites.cub import evaluate

    s = get_suite("cub")
    cfg = preset("smoke", "standin", "CSTN", image_size=96, test_digits=6, eval_batch=3)
    torch.manual_seed(0)
    model = s.build(cfg)
    with torch.no_grad():
        model.head.localizer[-1].bias.copy_(torch.tensor([10.0, 0, 0, 0, 10.0, 0]))
    g = torch.Generator().manual_seed(0)
    data = LocSet(torch.randn(6, 3, 96, 96, generator=g), torch.arange(6),
                  torch.tensor([[0.0, 0.0, 96.0, 96.0]]).expand(6, 4), "x")
    ev = evaluate(cfg, [model], None, data)
    assert ev["summary"]["loc"]["gt_known_loc"]["mean"] == 1.0
    assert ev["summary"]["untransformed"]["gt_known_loc"]["mean"] == 0.0
    assert ev["summary"]["mean_box_area"]["mean"] == 1.0
    hist = ev["fig_data"]["fig6"][0]
    assert hist["transformed"]["all"]["correct"][-1] == 6
    assert hist["untransformed"]["all"]["correct"][-1] == 0


def test_the_fine_level_share_reads_each_network_s_own_levels():
    # level_share is keyed by the index into the network's levels: CSTN-coarse's index 0
    # is the coarse level (the first medium report called it 100 % fine)
    from models.cstn import net_levels
    from models.suites.cub import fine_share

    assert net_levels("CSTN") == (0, 1) and net_levels("CSTN-coarse") == (1,)
    assert fine_share("CSTN-coarse", {"0": 1.0}) == 0.0
    assert fine_share("CSTN-fine", {"0": 1.0}) == 1.0
    assert fine_share("CSTN", {"0": 0.4, "1": 0.6}) == 0.4
