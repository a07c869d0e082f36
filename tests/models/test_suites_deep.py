"""The svhn and plankton suites (``models/suites/svhn.py``, ``plankton.py``, ``_deep.py``)."""

from __future__ import annotations

import json

import pytest
import torch

from models import plankton_nets as PN
from models import svhn_nets as SN
from models.errors import ConfigError
from models.runio import load_checkpoint
from models.suites import DataSource, get_suite
from models.train import train
from proofs.cli import main

SUITES = ("svhn", "plankton")


def _batch(suite, cfg, n=2):
    net = suite._classifier(cfg)
    x = torch.rand(n, *net.in_shape, generator=torch.Generator().manual_seed(0))
    if suite.name == "svhn":
        y = torch.randint(0, SN.HEAD_CLASSES, (n, SN.HEADS), generator=torch.Generator())
    else:
        y = torch.randint(0, 10, (n,), generator=torch.Generator())
    return x, y


@pytest.mark.parametrize("name", SUITES)
def test_every_network_takes_a_finite_smoke_step(name):
    """Each network: forward in train mode (dropout on), the suite's loss, gradients and
    one optimizer step, all finite; the localizers start at the identity (eq. 17)."""
    suite = get_suite(name)
    for net in suite.nets:
        cfg = suite.preset("smoke", name, net)
        torch.manual_seed(0)
        model = suite.build(cfg).train()
        x, y = _batch(suite, cfg)
        loss = suite.hooks(cfg).loss(model(x), y)
        params = dict(model.named_parameters())
        grads = dict(zip(params, torch.autograd.grad(loss, list(params.values()))))
        opt = suite.hooks(cfg).optimizer
        new, state = opt.update(params, grads, opt.init(params), cfg.lr_at(0))
        assert torch.isfinite(loss), net
        assert all(torch.isfinite(v).all() for v in new.values()), net
        if hasattr(model, "locs"):
            _, thetas = model.eval()(x, return_theta=True)
            eye = torch.eye(2, 3).expand_as(thetas[0])
            assert all(torch.equal(t, eye) for t in thetas), net


def test_lr_multipliers_and_optimizer_are_configuration():
    s, p = get_suite("svhn"), get_suite("plankton")
    assert s.preset("paper", "svhn", "STN-DL3").loc_lr == SN.LOC_LR_MULTIPLIERS[1]["STN-DL3"]
    assert s.preset("paper", "svhn", "STN-SL8-it2").loc_lr == 0.0003
    assert s.preset("paper", "svhn", "STN-SL0123").loc_lr == 0.01
    assert p.preset("paper", "plankton", "STN-C0-it3").loc_lr == PN.LOC_LR_MULTIPLIERS[3]["STN-C0"]
    cfg = p.preset("paper", "plankton", "STN-SL4")
    assert (cfg.momentum, cfg.nesterov, cfg.weight_decay) == (0.8, True, 2e-4)
    assert cfg.total_steps == 215_000 and cfg.lr_at(180_000) == pytest.approx(3e-4)
    assert s.preset("paper", "svhn", "CNN").total_steps == 300_000
    opt = p.hooks(p.preset("smoke", "plankton", "STN-DL2")).optimizer
    locs = {k for k, m in opt.lr_multipliers.items() if m == PN.LOC_LR_MULTIPLIERS[1]["STN-DL2"]}
    assert locs and all(k.startswith(("locs.", "loc_prefix.")) for k in locs)
    assert all(m == 1.0 for k, m in opt.lr_multipliers.items() if k.startswith("net."))


def test_preset_rejects_with_names():
    s = get_suite("svhn")
    with pytest.raises(ConfigError, match=r"preset: expected net in .*got 'STN-C1'"):
        s.preset("smoke", "svhn", "STN-C1")
    with pytest.raises(ConfigError, match=r"preset: expected scale in .*got 'huge'"):
        s.preset("huge", "svhn", "CNN")
    with pytest.raises(ConfigError, match=r"DeepConfig: expected width to be a finite number"):
        s.preset("smoke", "svhn", "CNN", width=0)
    with pytest.raises(ConfigError, match=r"--data: the svhn suite has no cached default"):
        s.check_source(DataSource())


@pytest.mark.parametrize("name", SUITES)
def test_resume_is_exact(tmp_path, name):
    """Two seeds (vmapped, dropout per seed), momentum state: stop after 2 steps, resume,
    the final parameters equal the uninterrupted run's bit for bit."""
    suite = get_suite(name)
    cfg = suite.preset("smoke", name, "STN-SL2" if name == "plankton" else "STN-SL3",
                       seeds=(0, 1))
    tr, te = suite.load_data(name, cfg, DataSource("standin"))
    kw = dict(progress=False, suite=suite)
    torch.manual_seed(123)
    train(cfg, tmp_path / "a", tr, te, **kw)
    torch.manual_seed(999)  # resume must not depend on the caller's global RNG
    assert train(cfg, tmp_path / "b", tr, te, stop_after=2, **kw) is None
    train(cfg, tmp_path / "b", tr, te, resume=True, **kw)
    a = load_checkpoint(tmp_path / "a" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoint.pt")
    assert a["step"] == b["step"] == cfg.total_steps
    for k in a["params"]:
        assert torch.equal(a["params"][k], b["params"][k]), k
    assert set(a["opt_state"]) == set(a["params"])


@pytest.mark.parametrize("name,nets", [("svhn", "CNN,STN-SL0123,STN-SL3-it2"),
                                       ("plankton", "STN-C0,STN-SL10")])
def test_smoke_through_the_cli_and_the_report(tmp_path, capsys, name, nets):
    out = tmp_path / name
    assert main(["train", "--suite", name, "--scale", "smoke", "--data", "standin", "--net",
                 nets, "--out", str(out), "--quiet"]) == 0
    index = json.loads((out / "suite.json").read_text())
    assert index["suite"] == name and set(index["runs"][name]) == set(nets.split(","))
    for r in index["runs"][name].values():
        assert "standin" in r["dataset"] and r["scale"] == "smoke"
        assert 0 <= r["error"]["mean"] <= 1
    assert main(["report", str(out), "--no-figures"]) == 0
    text = (out / "report.md").read_text()
    table = {"svhn": "Table IV layout", "plankton": "Table V layout"}[name]
    assert table in text and "paper" in text and "standin" in text and "smoke" in text
    assert "Iterations (000 Sec." in text


def test_list_params_json(capsys):
    for name in SUITES:
        assert main(["train", "--suite", name, "--list-params", "--json"]) == 0
        counts = json.loads(capsys.readouterr().out)
        key = next(iter(counts))
        assert counts[key]["width=1.0"]["STN-C0"] > counts[key]["width=1.0"]["CNN"]


def test_official_directories(tmp_path, capsys):
    """``--data DIR`` on the loaders' fixture files (SVHN format 1, PlanktonSet 1.0)."""
    from tests.models import test_data_plankton as TP
    from tests.models import test_data_svhn as TS

    sv = tmp_path / "svhn_root"
    TS.write_split(sv, "train", TS.TRAIN)
    TS.write_split(sv, "test", TS.TEST)
    pk = tmp_path / "pk_root"
    for i, c in enumerate(TP.CLASSES):
        (pk / "train" / c).mkdir(parents=True)
        TP.write_jpg(pk / "train" / c / f"{1000 + i}.jpg")
    for c, f in TP.TEST_FILES:
        (pk / "test" / TP.CLASSES[c]).mkdir(parents=True, exist_ok=True)
        TP.write_jpg(pk / "test" / TP.CLASSES[c] / f)
    for name, root in (("svhn", sv), ("plankton", pk)):
        out = tmp_path / f"out_{name}"
        assert main(["train", "--suite", name, "--scale", "smoke", "--data", str(root),
                     "--net", "STN-C0", "--out", str(out), "--quiet"]) == 0
        r = json.loads((out / "suite.json").read_text())["runs"][name]["STN-C0"]
        assert str(root) in r["dataset"]
    with pytest.raises(ValueError, match=r"expected layout"):
        get_suite("svhn").check_source(DataSource("official", pk))


def test_evaluate_turns_dropout_off(tmp_path):
    """Evaluation runs the network in eval mode (dropout off): two evaluations see the very
    same outputs, and the base is left in its training mode."""
    from models.core import init_models

    suite = get_suite("svhn")
    cfg = suite.preset("smoke", "svhn", "STN-SL3")
    base, params = init_models(cfg, suite.build)
    _, te = suite.load_data("svhn", cfg, DataSource("standin"))
    seen = []
    orig = suite._errors
    suite._errors = lambda out, y: (seen.append(out.clone()), orig(out, y))[1]
    try:
        suite.evaluate(cfg, base, params, te)
        suite.evaluate(cfg, base, params, te)
    finally:
        suite._errors = orig
    half = len(seen) // 2
    assert half and all(torch.equal(a, b) for a, b in zip(seen[:half], seen[half:]))
    assert base.training


def test_fig7_gallery_at_identity_and_rotations():
    """000 Fig. 7 data: at the identity initialization (eq. 17) every network leaves each
    rotated copy as it is; the 0-degree copy is the image and the 180-degree copy is the
    image turned over both axes (exact with align_corners=True)."""
    from models.core import init_models
    from models.suites._deep import FIG7_ANGLES, fig7_gallery

    suite = get_suite("svhn")
    for net in ("STN-C3", "STN-DL3", "STN-SL8", "STN-C0123"):
        cfg = suite.preset("smoke", "svhn", net)
        base, params = init_models(cfg, suite.build)
        _, te = suite.load_data("svhn", cfg, DataSource("standin"))
        g = fig7_gallery(base, {k: v[0] for k, v in params.items()}, te.images[:1], cfg)
        assert g["fig7_inputs"].shape == (len(FIG7_ANGLES),) + tuple(te.images.shape[1:])
        eye = torch.eye(2, 3).expand(len(FIG7_ANGLES), 2, 3)
        torch.testing.assert_close(torch.from_numpy(g["fig7_theta"]), eye)
        # saved as float16: two rounding steps apart at most (relative ulp 2^-10; a priori)
        torch.testing.assert_close(torch.from_numpy(g["fig7_outputs"]).float(),
                                   torch.from_numpy(g["fig7_inputs"]).float(),
                                   rtol=2 ** -9, atol=2 ** -10)
        ins = torch.from_numpy(g["fig7_inputs"]).float()
        x = te.images[0].half().float()
        torch.testing.assert_close(ins[FIG7_ANGLES.index(0.0)], x, atol=2e-3, rtol=0)
        torch.testing.assert_close(ins[FIG7_ANGLES.index(180.0)], x.flip(-1, -2), atol=2e-3,
                                   rtol=0)


def test_input_frame_theta_composes_map_slots_and_takes_the_last_input_slot():
    from models.deep_stn import Slot
    from models.suites._deep import input_frame_theta
    from sampling.geometry import compose

    g = torch.Generator().manual_seed(0)
    a, b = (torch.eye(2, 3) + 0.1 * torch.randn(2, 2, 3, generator=g) for _ in range(2))

    class Fake:  # only .slots is read
        def __init__(self, kinds):
            self.slots = tuple(Slot(k, d) for d, k in enumerate(kinds))

    # STN-C0123-like: each map-warping matrix composes on top of the previous
    torch.testing.assert_close(input_frame_theta(Fake("CC"), [a, b]), compose(a, b))
    # STN-SL0123-like: each input-warping matrix is already the composed one
    torch.testing.assert_close(input_frame_theta(Fake(["SL", "SL"]), [a, b]), b)
    torch.testing.assert_close(input_frame_theta(Fake(["DL"]), [a]), a)


def test_report_draws_fig7_from_the_runs(tmp_path):
    out = tmp_path / "svhn"
    assert main(["train", "--suite", "svhn", "--scale", "smoke", "--data", "standin", "--net",
                 "STN-C3,STN-DL3,STN-SL3", "--out", str(out), "--quiet"]) == 0
    assert main(["report", str(out)]) == 0
    png = out / "figures" / "fig7_rotations.png"
    assert png.is_file() and png.stat().st_size > 1000
    text = (out / "report.md").read_text()
    assert "figures/fig7_rotations.png" in text and "standin" in text
    assert json.loads((out / "report.json").read_text())["figures"]["fig7_rotations"] == str(png)


def _weights(model, kind):
    return [m for m in model.modules() if isinstance(m, kind)]


@pytest.mark.parametrize("name,slope", [("svhn", 0.0), ("plankton", PN.LEAK)])
def test_he_init_is_configuration_and_reaches_every_layer_but_the_eq17_outputs(name, slope):
    """``init="he"``: every conv / F weight of classifier, localizers and DL's layer copies
    has He's std ``sqrt(2 / ((1 + a^2) fan_in))`` (checked to 10 %: the sample std over
    >= 2000 weights has a relative sd below 2 %), biases zero, the eq. 17 output layers
    stay zero; ``init="pytorch"`` keeps PyTorch's bounds (std ``1 / sqrt(3 fan_in)``)."""
    import math

    from models.layer_nets import Localizer

    suite = get_suite(name)
    net = "STN-DL3" if name == "svhn" else "STN-DL4"
    for init, gain2 in (("he", 2 / (1 + slope ** 2)), ("pytorch", 1 / 3)):
        torch.manual_seed(0)
        model = suite.build(suite.preset("small", name, net, init=init))
        outs = {id(m.out) for m in model.modules() if isinstance(m, Localizer)}
        assert outs, "the network has a localizer"
        checked = 0
        for m in _weights(model, (torch.nn.Conv2d, torch.nn.Linear)):
            if id(m) in outs:
                assert not m.weight.any() and not m.bias.any(), "eq. 17 layer moved"
                continue
            if m.weight.numel() < 2000:
                continue
            fan_in = m.weight[0].numel()
            want = math.sqrt(gain2 / fan_in)
            assert abs(float(m.weight.detach().std()) / want - 1) < 0.1, (init, m, want)
            if init == "he":
                assert not m.bias.any()
            checked += 1
        assert checked >= 5


def test_he_init_fails_when_it_does_nothing():
    """The std check above is not vacuous: PyTorch's default bounds are ~0.41x He's."""
    import math

    from models.layer_nets import he_init_

    lin = torch.nn.Linear(1000, 100)
    he = math.sqrt(2 / 1000)
    assert abs(float(lin.weight.detach().std()) / he - 1) > 0.5
    he_init_(lin)
    assert abs(float(lin.weight.detach().std()) / he - 1) < 0.1


@pytest.mark.parametrize("name", SUITES)
def test_dropout_is_configuration(name):
    suite = get_suite(name)
    paper = {m.p for m in _weights(suite.build(suite.preset("smoke", name, "STN-SL3"
                                                              if name == "svhn" else "STN-SL2")),
                                    torch.nn.Dropout)}
    assert paper == {0.5}
    cfg = suite.preset("smoke", name, "CNN", dropout=0.0)
    assert {m.p for m in _weights(suite.build(cfg), torch.nn.Dropout)} == {0.0}


@pytest.mark.parametrize("bad", [dict(init="xavier"), dict(dropout=1.0), dict(dropout=-0.1),
                                 dict(dropout=True), dict(dropout="0.5")])
def test_init_and_dropout_are_checked(bad):
    with pytest.raises(ConfigError, match=next(iter(bad))):
        get_suite("svhn").preset("smoke", "svhn", "CNN", **bad)


@pytest.mark.parametrize("net", ["STN-C0", "STN-DL4", "STN-SL4", "STN-SL2-it2"])
def test_the_training_log_carries_the_deep_st_geometry(net):
    """Issue 13: the DLX STs of both `small` runs sampled off the image while training
    said nothing. The loop now measures every deep network's input-frame ST (the collapse
    watch's inside fraction and log2 det): 1 and 0 at the identity, 1/4 and +2 for a
    zoom-out by 2 (per iteration), in eval mode (dropout draws no random numbers)."""
    from models.train import _geometry_fn

    suite = get_suite("plankton")
    cfg = suite.preset("smoke", "plankton", net)
    torch.manual_seed(0)
    model = suite.build(cfg).train()
    geometry = _geometry_fn(model)
    x, _ = _batch(suite, cfg, n=4)
    p = {k: v.detach() for k, v in model.named_parameters()}
    rng = torch.get_rng_state()
    assert geometry(p, x) == pytest.approx((1.0, 0.0), abs=1e-6)
    assert torch.equal(torch.get_rng_state(), rng) and model.training
    first = [k for k in p if k.startswith("locs.0.") and k.endswith("out.bias")]
    assert first, sorted(p)
    p[first[0]] = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])  # o + I: a zoom-out by 2
    inside, log2_det = geometry(p, x)
    n = model.iterations  # the same localizer again on the warped input: zoom 2**n
    assert inside == pytest.approx(0.25 ** n, abs=0.03) and \
        log2_det == pytest.approx(2.0 * n, abs=1e-5)
    assert _geometry_fn(suite.build(suite.preset("smoke", "plankton", "CNN"))) is None


@pytest.mark.parametrize("name,net", [("svhn", "STN-SL3-it2"), ("plankton", "STN-C0-it2"),
                                      ("svhn", "STN-SL0123")])
def test_iterated_networks_train_several_seeds(tmp_path, name, net):
    """Issue 13's `medium` runs (3 seeds) died at STN-SL0123 and the `-it2` networks: the
    composed matrices' NaN check is data-dependent control flow that vmap refuses. Such
    networks train seed by seed (recorded: ``vmap`` False), the others (STN-C0123: one
    matrix per slot, none composed) keep the configured vmap."""
    suite = get_suite(name)
    cfg = suite.preset("smoke", name, net, seeds=(0, 1))
    assert cfg.vmap  # the configuration asks for vmap ...
    tr, te = suite.load_data(name, cfg, DataSource("standin"))
    res = train(cfg, tmp_path / "r", tr, te, progress=False, suite=suite)
    assert res["train"]["vmap"] is False  # ... which this network cannot use
    assert all(e == e for e in res["error"]["per_seed"])
    cfg1 = suite.preset("smoke", name, net.removesuffix("-it2").replace("SL0123", "C0123"),
                        seeds=(0, 1))
    res1 = train(cfg1, tmp_path / "r1", tr, te, progress=False, suite=suite)
    assert res1["train"]["vmap"] is True


def test_a_collapsed_deep_st_is_recorded_and_the_run_trains_on(tmp_path, monkeypatch):
    """The deep suites record a collapse (seed and step) in the metrics and the report and
    train to the end (stops_on_collapse False); a localizer pushed entirely off the image
    (translation 5 in normalized units, no gradient back) is seen by the watch."""
    suite = get_suite("plankton")
    cfg = suite.preset("smoke", "plankton", "STN-C0", seeds=(0, 1), iters=6, iters_low=0,
                       iters_lower=0, log_every=1, checkpoint_every=3)
    build = suite.build

    def off_image(c):
        m = build(c)
        if c.net == "STN-C0":
            with torch.no_grad():
                m.locs[0].out.bias.copy_(torch.tensor([0.0, 0.0, 5.0, 0.0, 0.0, 5.0]))
        return m

    monkeypatch.setattr(suite, "build", off_image)
    tr, te = suite.load_data("plankton", cfg, DataSource("standin"))
    res = train(cfg, tmp_path / "r", tr, te, progress=False, suite=suite)
    assert res["steps"] == 6 and not (tmp_path / "r" / "collapsed.json").exists()
    assert res["collapse"]["stops_run"] is False
    assert res["collapse"]["seeds"] == {"0": 2, "1": 2}  # window: 2 log lines
    from models.record import SuiteRecord
    (tmp_path / "s" / "plankton").mkdir(parents=True)
    (tmp_path / "r").rename(tmp_path / "s" / "plankton" / "STN-C0")
    lines = SuiteRecord.load(tmp_path / "s").collapse_lines()
    assert "- plankton/STN-C0: seed 0 at step 2, seed 1 at step 2" in lines


@pytest.mark.parametrize("name", SUITES)
def test_every_network_takes_a_two_seed_step_in_the_training_loop(tmp_path, name):
    """What `medium` (3 seeds) does first for each network: without it, STN-SL0123 and the
    `-it2` networks only failed an hour into a `--net all` run."""
    suite = get_suite(name)
    cfg0 = suite.preset("smoke", name, "CNN", seeds=(0, 1))
    tr, _ = suite.load_data(name, cfg0, DataSource("standin"))
    for i, net in enumerate(suite.nets):
        cfg = suite.preset("smoke", name, net, seeds=(0, 1), iters=1, iters_low=0,
                           iters_lower=0)
        res = train(cfg, tmp_path / str(i), tr, None, progress=False, suite=suite)
        assert res["steps"] == 1 and res["train"]["final_loss"] == res["train"]["final_loss"]


def test_non_finite_st_parameters_inside_the_step_are_a_divergence(tmp_path, monkeypatch):
    """PlanktonSet `medium`: STN-C0-it2's first-iteration matrix went NaN, and compose's
    check raised a ValueError that ended the whole suite. It is a divergence: recorded
    (diverged.json) and raised as TrainingDiverged, which the suite runner goes past."""
    from models.train import TrainingDiverged

    suite = get_suite("plankton")
    cfg = suite.preset("smoke", "plankton", "STN-C0-it2", seeds=(0,))
    build = suite.build

    def nan_localizer(c):
        m = build(c)
        with torch.no_grad():
            m.locs[0].out.bias.fill_(float("nan"))
        return m

    monkeypatch.setattr(suite, "build", nan_localizer)
    tr, te = suite.load_data("plankton", cfg, DataSource("standin"))
    with pytest.raises(TrainingDiverged, match=r"diverged at step 1: compose: expected finite"):
        train(cfg, tmp_path / "r", tr, te, progress=False, suite=suite)
    assert json.loads((tmp_path / "r" / "diverged.json").read_text())["step"] == 1
