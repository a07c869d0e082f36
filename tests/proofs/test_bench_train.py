"""``stnlab bench train`` (proofs/bench_train.py): report shape and bad input; no timing asserted."""

from __future__ import annotations

import json

import pytest
import torch

from models.data.perturb import PerturbedMNIST
from proofs.bench_train import MODES, bench_train, cpu_info, format_table
from proofs.cli import main
from models.errors import UsageError


@pytest.fixture(autouse=True)
def _restore_threads():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _tiny_data(variant="R"):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(32, 28, 28, generator=gen)
    y = torch.randint(0, 10, (32,), generator=gen)
    return PerturbedMNIST(variant, x, y)


def test_cli_json_shape_with_one_step(real_mnist_dir, monkeypatch, capsys):
    monkeypatch.setenv("STNLAB_DATA_DIR", str(real_mnist_dir))
    rc = main(["bench", "train", "--suite", "mnist", "--variant", "R", "--net", "STN-C0",
               "--batch-size", "4", "--seeds", "2", "--steps", "1", "--warmup", "0",
               "--threads", "1", "--modes", "fp32,bf16_channels_last,cuda_graph", "--json"])
    assert rc == 0
    out = capsys.readouterr()
    rep = json.loads(out.out)
    assert {"modes", "cpu", "device", "torch"} <= set(rep)
    assert rep["device"] == "cpu" and rep["torch"] == torch.__version__
    assert isinstance(rep["cpu"]["model"], str) and isinstance(rep["cpu"]["flags"], list)
    assert [m["mode"] for m in rep["modes"]] == ["fp32", "bf16_channels_last", "cuda_graph"]
    for m in rep["modes"]:
        assert {"mode", "img_per_s", "speedup"} <= set(m)
    fp32, bf16cl, graph = rep["modes"]
    assert fp32["speedup"] == 1.0 and fp32["img_per_s"] > 0 and bf16cl["img_per_s"] > 0
    if not torch.cuda.is_available():
        assert graph["img_per_s"] is None and "CUDA" in graph["unavailable"]
    assert rep["config"]["vmap"] is True and rep["config"]["data_generation"] == "included"
    assert "| fp32 |" in out.err  # the table goes to stderr when JSON goes to stdout


def test_json_to_a_file_and_the_table(tmp_path, monkeypatch, capsys):
    import proofs.bench_train as bt

    monkeypatch.setattr("models.train.load_data", lambda v, d, **kw: (_tiny_data(v), None))
    path = tmp_path / "b" / "r.json"
    rc = main(["bench", "train", "--variant", "R", "--net", "CNN", "--batch-size", "2",
               "--steps", "1", "--warmup", "0", "--threads", "1", "--modes", "fp32,bf16",
               "--json", str(path)])
    assert rc == 0
    rep = json.loads(path.read_text())
    assert [m["mode"] for m in rep["modes"]] == ["fp32", "bf16"]
    assert "| bf16 |" in capsys.readouterr().out
    assert "R / CNN" in bt.format_table(rep)


@pytest.mark.parametrize("argv, msg", [
    (["--modes", "fp32,fp16"], "--modes: expected a comma list"),
    (["--modes", ""], "--modes: expected a comma list"),
    (["--steps", "0"], "--steps: expected an int >= 1, got 0"),
    (["--seeds", "0"], "--seeds: expected an int >= 1, got 0"),
    (["--batch-size", "0"], "--batch-size: expected an int >= 1, got 0"),
    (["--warmup", "-1"], "--warmup: expected an int >= 0, got -1"),
    (["--net", "STN-X"], "--net: invalid choice"),
    (["--variant", "Q"], "--variant: invalid choice"),
    (["--suite", "cifar"], "--suite: invalid choice"),
])
def test_cli_bad_arguments_exit_2_with_one_line(argv, msg, capsys):
    base = {"--variant": "R", "--net": "CNN"}
    for flag in ("--variant", "--net"):
        if flag in argv:
            base.pop(flag)
    args = ["bench", "train", *[a for kv in base.items() for a in kv], *argv]
    try:
        rc = main(args)
    except SystemExit as e:  # argparse errors
        rc = e.code
    assert rc == 2
    err = capsys.readouterr().err
    assert msg in err and len(err.strip().splitlines()) == 1


def test_bench_train_rejects_unknown_modes_and_counts():
    data = _tiny_data()
    with pytest.raises(UsageError, match=r"bench_train: expected distinct modes .* 'fp16'"):
        bench_train(variant="R", net="CNN", modes=["fp32", "fp16"], data=data)
    with pytest.raises(UsageError, match=r"bench_train: expected distinct modes"):
        bench_train(variant="R", net="CNN", modes=["fp32", "fp32"], data=data)
    with pytest.raises(UsageError, match=r"bench_train: expected steps to be an int >= 1"):
        bench_train(variant="R", net="CNN", steps=0, data=data)


def test_a_mode_that_fails_is_reported_not_fatal(monkeypatch):
    import proofs.bench_train as bt

    real = bt._Mode.__init__

    def init(self, name, *a, **kw):
        real(self, name, *a, **kw)
        if name == "bf16":
            def boom(*_):
                raise RuntimeError("no bf16 kernel\nsecond line")
            self.fn = boom

    monkeypatch.setattr(bt._Mode, "__init__", init)
    rep = bench_train(variant="R", net="CNN", batch_size=2, steps=1, warmup=1,
                      modes=["fp32", "bf16"], data=_tiny_data())
    fp32, bf16 = rep["modes"]
    assert fp32["img_per_s"] > 0
    assert bf16["img_per_s"] is None and bf16["unavailable"] == "RuntimeError: no bf16 kernel"
    assert "unavailable: RuntimeError: no bf16 kernel" in format_table(rep)


def test_cpu_info_and_mode_names():
    info = cpu_info()
    assert isinstance(info["model"], str) and info["model"]
    assert MODES[0] == "fp32" and "cuda_graph" in MODES
