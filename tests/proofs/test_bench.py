"""Smoke tests of ``stnlab bench sampler`` (no timing assertions)."""

from __future__ import annotations

import json

import pytest
import torch

from proofs.cli import main
from proofs.bench import bench_sampler, format_table, peak_memory


@pytest.fixture(autouse=True)
def _restore_threads():
    """``--threads`` sets torch's global thread count; put it back for later tests."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_bench_cli_writes_table_and_json(tmp_path, capsys):
    out = tmp_path / "bench.json"
    rc = main(["bench", "sampler", "--shape", "2,1,8,4", "--shape", "1,2,6,6", "--repeats", "2",
               "--num-samples", "3", "--threads", "1", "--json", str(out)])
    assert rc == 0
    table = capsys.readouterr().out
    assert "| 2, 1, 8 -> 4 | linearized |" in table
    report = json.loads(out.read_text())
    meta = report["meta"]
    assert meta["torch"] == torch.__version__ and meta["device"] == "cpu"
    assert meta["threads"] == 1 and meta["num_samples"] == 3
    rows = report["rows"]
    assert [r["method"] for r in rows] == ["bilinear", "linearized", "multiscale",
                                           "gathers_only"] * 2
    for r in rows:
        assert r["fwd_ms"] > 0 and r["fwdbwd_ms"] > 0 and r["peak_bytes"] >= 0
        if r["method"] == "bilinear":
            assert r["fwd_ratio"] == 1.0 and r["fwdbwd_ratio"] == 1.0


@pytest.mark.parametrize("argv, msg", [
    (["--repeats", "0"], "--repeats"),
    (["--num-samples", "0"], "--num-samples"),
    (["--threads", "0"], "--threads"),
])
def test_bench_cli_rejects_bad_values(argv, msg, capsys):
    assert main(["bench", "sampler", "--shape", "1,1,4,4", *argv]) == 2
    assert msg in capsys.readouterr().err


def test_bench_cli_rejects_a_bad_shape(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "sampler", "--shape", "1,2,3"])
    assert e.value.code == 2
    assert "N,C,H,h" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="tests the no-CUDA message")
def test_bench_cli_without_cuda(capsys):
    assert main(["bench", "sampler", "--device", "cuda", "--shape", "1,1,4,4"]) == 2
    assert "CUDA is not available" in capsys.readouterr().err


def test_peak_memory_counts_live_tensors():
    x = torch.rand(1000, 1000)  # 4 MB

    def two_live():
        y = x * 2
        z = y + 1
        del y, z

    def one_at_a_time():
        (x * 2).sum()
        (x + 1).sum()

    assert peak_memory(two_live, torch.device("cpu")) >= 8_000_000
    assert 4_000_000 <= peak_memory(one_at_a_time, torch.device("cpu")) < 8_000_000


def test_format_table_has_one_row_per_method_and_shape():
    report = bench_sampler(shapes=((1, 1, 4, 4),), repeats=1, num_samples=2)
    assert format_table(report).count("| 1, 1, 4 -> 4 |") == 4


def test_bench_cli_can_pick_the_cpu_kernel_copy(tmp_path, capsys):
    import sampling._ext as ext

    if ext.load() is None:
        pytest.skip("fused kernel unavailable here (the eager path is benchmarked)")
    out = tmp_path / "bench.json"
    assert main(["bench", "sampler", "--shape", "1,1,6,6", "--repeats", "1",
                 "--cpu-kernel", "portable", "--json", str(out)]) == 0
    assert json.loads(out.read_text())["meta"]["linearized_kernel"] == "fused-cpu (portable)"
    assert ext.isa == 0  # restored
    assert "linearized backward: fused-cpu (portable)" in capsys.readouterr().out
