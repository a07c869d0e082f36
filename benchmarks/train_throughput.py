"""Where a training step's time goes, per MNIST network, at the ``paper`` configuration.

For each (variant, net) it times, in one process and with the device synchronized around
each measurement:

* ``data``: rendering one fresh perturbed batch per seed (what ``train`` does each step);
* ``step``: the multi-seed (vmapped) gradient + SGD update on a fixed batch, eager;
* ``graph``: the same step captured once in a CUDA graph and replayed (CUDA only); its
  loss is compared with the eager step's on the same batch and parameters.

``--modes`` picks how the step runs: a comma list of modes, each ``vmap`` (what ``train``
does) or ``sequential`` (the seeds one after another, plain autograd), optionally followed
by ``+bf16`` (bf16 autocast) and ``+bench`` (``torch.backends.cudnn.benchmark``); e.g.
``vmap,sequential+bf16+bench``.

Images per second = seeds x batch / (data + step). Nothing here is asserted; it prints a
Markdown table and writes JSON (``--json``).

    python benchmarks/train_throughput.py --device cuda --seeds 10 --json out.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from models.mnist_nets import NETS, VARIANT_SHAPES  # noqa: E402
from models.train import init_models, load_data, make_step, preset  # noqa: E402
from models.suites.mnist import SUITE as MNIST  # noqa: E402


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _time(fn, device, n):
    out = []
    for _ in range(n):
        _sync(device)
        t0 = time.perf_counter()
        fn()
        _sync(device)
        out.append(time.perf_counter() - t0)
    return statistics.median(out)


def probe(variant, net, *, seeds, device, repeats, data, mode="vmap"):
    cfg = preset("paper", variant, net, seeds=tuple(range(seeds)), device=device)
    base, params = init_models(cfg, MNIST.build)
    kind, *flags = mode.split("+")
    if kind not in ("vmap", "sequential") or not set(flags) <= {"bf16", "bench"}:
        raise SystemExit(f"--modes: unknown mode {mode!r}")
    torch.backends.cudnn.benchmark = "bench" in flags
    inner = make_step(base, use_vmap=seeds > 1 and kind == "vmap")
    step_fn = inner
    if "bf16" in flags:
        def step_fn(p, x, y):
            with torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16):
                return inner(p, x, y)
    gens = [torch.Generator(device=device).manual_seed(s) for s in cfg.seeds]
    train = data

    def gen_batch():
        return train.train_batches(cfg.batch_size, gens)

    x, y = gen_batch()
    lr = cfg.lr

    def eager():
        nonlocal params
        grads, loss, _ = step_fn(params, x, y)
        with torch.no_grad():
            params = {k: p - lr * grads[k] for k, p in params.items()}
        return loss

    for _ in range(3):
        gen_batch()
        eager()
    row = {"variant": variant, "net": net, "mode": mode, "seeds": seeds,
           "batch": cfg.batch_size,
           "data_ms": 1e3 * _time(gen_batch, device, repeats),
           "step_ms": 1e3 * _time(eager, device, repeats)}
    if device.startswith("cuda") and mode == "vmap":
        try:
            static = {k: v.clone() for k, v in params.items()}
            sx, sy = x.clone(), y.clone()
            s = torch.cuda.Stream()
            s.wait_stream(torch.cuda.current_stream())
            with torch.cuda.stream(s):
                for _ in range(3):  # warm up on a side stream, as CUDA graphs require
                    g_, l_, _ = step_fn(static, sx, sy)
            torch.cuda.current_stream().wait_stream(s)
            graph = torch.cuda.CUDAGraph()
            with torch.cuda.graph(graph):
                g_, static_loss, _ = step_fn(static, sx, sy)
                with torch.no_grad():
                    for k, p in static.items():
                        p.sub_(lr * g_[k])
            ref = {k: v.clone() for k, v in static.items()}
            ref_loss = step_fn(ref, sx, sy)[1]
            graph.replay()
            torch.cuda.synchronize()
            row["graph_loss_maxdiff"] = float((static_loss - ref_loss).abs().max())
            row["graph_ms"] = 1e3 * _time(graph.replay, device, repeats)
        except Exception as e:  # report, don't hide: the eager numbers still stand
            row["graph_error"] = f"{type(e).__name__}: {e}"[:300]
    t = row["data_ms"] + row["step_ms"]
    row["img_per_s_eager"] = seeds * cfg.batch_size / (t / 1e3)
    row["paper_run_s_eager"] = cfg.total_steps * t / 1e3
    if "graph_ms" in row:
        tg = row["data_ms"] + row["graph_ms"]
        row["img_per_s_graph_step"] = seeds * cfg.batch_size / (tg / 1e3)
        row["paper_run_s_graph_step"] = cfg.total_steps * tg / 1e3
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--seeds", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--variant", default="R,T,S")
    ap.add_argument("--net", default=",".join(NETS))
    ap.add_argument("--modes", default="vmap",
                    help="comma list of vmap, sequential, vmap_bf16, vmap_cudnn_benchmark")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    rows = []
    for v in a.variant.split(","):
        if v not in VARIANT_SHAPES:
            ap.error(f"--variant: expected R, T or S, got {v!r}")
        train, _ = load_data(v, a.device)
        for n in a.net.split(","):
            for mode in a.modes.split(","):
                r = probe(v, n, seeds=a.seeds, device=a.device, repeats=a.repeats, data=train,
                          mode=mode)
                rows.append(r)
                print(json.dumps({k: (round(x, 3) if isinstance(x, float) else x)
                                  for k, x in r.items()}), flush=True)
    dev = torch.cuda.get_device_name() if a.device.startswith("cuda") else platform.processor()
    print(f"\ntorch {torch.__version__}, {a.device} ({dev}), {a.seeds} seeds x batch 256\n")
    print("| variant | net | mode | data ms | step ms | graph step ms | img/s eager | "
          "70k-step run (eager) |")
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['variant']} | {r['net']} | {r['mode']} | {r['data_ms']:.2f} | "
              f"{r['step_ms']:.2f} | "
              f"{r.get('graph_ms', float('nan')):.2f} | {r['img_per_s_eager']:.0f} | "
              f"{r['paper_run_s_eager'] / 60:.1f} min |")
    for mode in a.modes.split(","):
        tot = sum(r["paper_run_s_eager"] for r in rows if r["mode"] == mode)
        print(f"\nsum of 70k-step runs, {mode}: {tot / 60:.1f} min")
    graphed = [r for r in rows if r["mode"] == "vmap"]
    if graphed and all("paper_run_s_graph_step" in r for r in graphed):
        print(f"vmap with the step graphed (data eager): "
              f"{sum(r['paper_run_s_graph_step'] for r in graphed) / 60:.1f} min")
    if a.json:
        Path(a.json).write_text(json.dumps({"torch": torch.__version__, "device": a.device,
                                            "device_name": dev, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
