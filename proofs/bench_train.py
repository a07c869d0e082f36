"""``stnlab bench train``: images per second of one training step in each precision mode.

One process, one network, several *modes* of the same step, each on its own copy of the
same initial parameters and the same data stream (one generator per seed, as ``train``
draws them). A timed step is what the training loop does per step:

1. render a fresh perturbed batch per seed (``PerturbedMNIST.train_batches``, the
   loop's data generation: included because the loop pays it every step);
2. the multi-seed step: ``vmap(grad_and_value(loss))`` over the seeds (several seeds) or
   the seed-by-seed autograd step (one seed), exactly as ``models.train.train`` chooses;
3. the plain SGD update ``p - lr * g``.

Modes:

* ``fp32``: eager float32, the baseline;
* ``channels_last``, ``bf16``, ``bf16_channels_last``: :class:`models.precision.Precision`
  (bf16 autocast with fp32 master weights; channels-last images and conv weights);
* ``compile``, ``compile_bf16_channels_last``: steps 2-3 under ``torch.compile`` (the data
  stays eager); compilation happens during the warm-up and is not timed;
* ``cuda_graph``: steps 2-3 captured once in a CUDA graph and replayed on the new batch
  (CUDA only);
* ``seq_fp32``, ``seq_bf16``, ``seq_bf16_channels_last``: several seeds trained one after another
  (``TrainConfig.vmap=False``) instead of vmapped; with one seed they are the baseline's
  path and reported as unavailable.

A mode that cannot run here (no CUDA, a compile error) is reported as unavailable with a
one-line reason; the others still run. After ``--warmup`` steps per mode, ``--steps``
timed steps run with the modes interleaved (mode 1, mode 2, ..., mode 1, ...) so machine
noise falls on all of them alike; each mode's figure is the median step time. No timing is
asserted anywhere. Each mode also reports its median *process CPU time* per step and the
speedup by that measure, which other processes on a shared machine distort less than wall
time (with one torch thread; with several, CPU time also counts threads spinning).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

from models.errors import UsageError

__all__ = ["add_arguments", "run", "bench_train", "MODES", "cpu_info"]

MODES = ("fp32", "channels_last", "bf16", "bf16_channels_last", "compile",
         "compile_bf16_channels_last", "cuda_graph", "seq_fp32", "seq_bf16", "seq_bf16_channels_last")
#: CPU flags that decide which bf16 / matrix kernels oneDNN can use.
CPU_FLAGS = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_tile",
             "amx_bf16", "amx_int8", "amx_fp16")


def cpu_info() -> dict:
    """``{"model", "family", "model_id", "flags"}`` from ``/proc/cpuinfo`` (flags: those of
    :data:`CPU_FLAGS` this CPU has); ``platform.processor()`` where there is no such file."""
    info = {"model": platform.processor() or platform.machine(), "flags": []}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return info
    fields = {}
    for line in text.split("\n\n")[0].splitlines():
        k, _, v = line.partition(":")
        fields[k.strip()] = v.strip()
    have = set(fields.get("flags", "").split())
    info.update(model=fields.get("model name", info["model"]),
                family=fields.get("cpu family"), model_id=fields.get("model"),
                flags=[f for f in CPU_FLAGS if f in have])
    return info


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


class _Mode:
    """One way of running the step: ``step(x, y)`` advances this mode's parameters."""

    def __init__(self, name, cfg, base, params, use_vmap, lr):
        from models.precision import Precision
        from models.train import make_step

        self.name, self.cfg, self.lr = name, cfg, lr
        self.unavailable = None
        self.times: list[float] = []
        self.cpu_times: list[float] = []
        prec = {"compile": "fp32", "cuda_graph": "fp32", "seq_fp32": "fp32", "seq_bf16": "bf16",
                "compile_bf16_channels_last": "bf16_channels_last",
                "seq_bf16_channels_last": "bf16_channels_last"}.get(name, name)
        if name.startswith("seq_"):
            if not use_vmap:
                self.unavailable = "the step is already seed by seed (one seed or no vmap)"
            use_vmap = False
        self.precision = Precision.parse(prec)
        self.params = self.precision.format_params({k: v.clone() for k, v in params.items()})
        self.inner = self.precision.wrap_step(make_step(base, use_vmap), cfg.device)
        self.gens = [torch.Generator(device=cfg.device).manual_seed(s) for s in cfg.seeds]
        self.graph = None
        if name.startswith("compile"):
            self.fn = torch.compile(self._update)
        else:
            self.fn = self._update
        if name == "cuda_graph" and not cfg.device.startswith("cuda"):
            self.unavailable = "CUDA graphs need a CUDA device"

    def _update(self, params, x, y):
        grads, loss, _ = self.inner(params, x, y)
        with torch.no_grad():
            return {k: p - self.lr * grads[k] for k, p in params.items()}, loss

    def batch(self):
        return self.cfg_data.train_batches(self.cfg.batch_size, self.gens)

    def _capture(self, x, y):
        """Capture steps 2-3 on static tensors (warm-up on a side stream, as CUDA asks)."""
        self.sx, self.sy = x.clone(), y.clone()
        s = torch.cuda.Stream()
        s.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(s):
            for _ in range(3):
                self.inner(self.params, self.sx, self.sy)
        torch.cuda.current_stream().wait_stream(s)
        self.graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self.graph):
            grads, self.sloss, _ = self.inner(self.params, self.sx, self.sy)
            with torch.no_grad():
                for k, p in self.params.items():
                    p.sub_(self.lr * grads[k])

    def step(self):
        x, y = self.batch()
        if self.name == "cuda_graph":
            if self.graph is None:
                self._capture(x, y)
            self.sx.copy_(x)
            self.sy.copy_(y)
            self.graph.replay()
            return self.sloss
        self.params, loss = self.fn(self.params, x, y)
        return loss

    def timed_step(self):
        _sync(self.cfg.device)
        t0, c0 = time.perf_counter(), time.process_time()
        loss = self.step()
        _sync(self.cfg.device)
        self.times.append(time.perf_counter() - t0)
        self.cpu_times.append(time.process_time() - c0)
        return loss


def bench_train(*, variant: str, net: str, device: str = "cpu", batch_size: int | None = None,
                seeds: int = 1, steps: int = 10, warmup: int = 2, modes=MODES, data=None,
                progress=None) -> dict:
    """Time one training step per mode (see the module doc); return the report.

    Args:
        variant, net: the MNIST network (``models.mnist_nets``).
        device: ``"cpu"`` or ``"cuda"``.
        batch_size: images per seed and step (default: the ``small`` preset's).
        seeds: seeds trained together (stacked, vmapped when > 1, as in ``train``).
        steps: timed steps per mode; warmup: untimed steps per mode before them.
        modes: names from :data:`MODES`.
        data: a training set with ``train_batches`` (default: MNIST from the cache).
        progress: optional ``callable(str)`` for status lines.

    Returns:
        ``{"modes": [{"mode", "img_per_s", "speedup", "ms_per_step", ...}], "cpu",
        "device", "torch", "config", ...}``; an unavailable mode has ``img_per_s`` None
        and ``unavailable``: its reason. ``speedup`` is over ``fp32`` (None without it).

    Raises:
        UsageError: an unknown mode, variant or network, or a count < 1.
    """
    from models.train import load_data, preset

    fn = "bench_train"
    modes = list(modes)
    bad = [m for m in modes if m not in MODES]
    if bad or not modes or len(set(modes)) != len(modes):
        raise UsageError(f"{fn}: expected distinct modes from {list(MODES)}, got {modes}")
    for name, v, lo in (("seeds", seeds, 1), ("steps", steps, 1), ("warmup", warmup, 0)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise UsageError(f"{fn}: expected {name} to be an int >= {lo}, got {v!r}")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise UsageError(f"{fn}: expected device 'cpu' (CUDA is not available here), "
                         f"got {device!r}")
    over = {} if batch_size is None else {"batch_size": batch_size}
    # The baseline is the vmapped step (the seq_* modes are the seed-by-seed ones), not
    # the preset's per-device choice (models.config.default_vmap).
    cfg = preset("small", variant, net, seeds=tuple(range(seeds)), device=device, vmap=True,
                 **over)
    from models.train import init_models
    from models.suites.mnist import SUITE as MNIST

    base, params = init_models(cfg, MNIST.build)
    if data is None:
        data, _ = load_data(variant, device, test_digits=1)
    use_vmap = cfg.vmap and seeds > 1 and cfg.method == "bilinear"
    say = progress or (lambda s: None)
    runs = []
    for m in modes:
        r = _Mode(m, cfg, base, params, use_vmap, cfg.lr)
        r.cfg_data = data
        runs.append(r)
    for r in runs:  # warm-up (and compilation / capture)
        if r.unavailable:
            continue
        say(f"bench train: warm-up {r.name}")
        try:
            # compile / capture happen on the first step: never time it
            n = max(warmup, 1) if r.name.startswith(("compile", "cuda_graph")) else warmup
            for _ in range(n):
                r.step()
            _sync(device)
        except Exception as e:  # a mode that cannot run here is reported, not fatal
            msg = str(e).strip().splitlines()[0] if str(e).strip() else ""
            r.unavailable = f"{type(e).__name__}: {msg}"[:200]
    live = [r for r in runs if not r.unavailable]
    for i in range(steps):  # interleaved
        for r in live:
            r.timed_step()
        say(f"bench train: timed step {i + 1}/{steps}")
    if device.startswith("cuda"):
        dev_name = torch.cuda.get_device_name(torch.device(device))
    else:
        dev_name = cpu_info()["model"]
    images = seeds * cfg.batch_size
    rows = []
    for r in runs:
        if r.unavailable:
            rows.append({"mode": r.name, "img_per_s": None, "speedup": None,
                         "ms_per_step": None, "unavailable": r.unavailable})
            continue
        med = statistics.median(r.times)
        rows.append({"mode": r.name, "img_per_s": round(images / med, 1), "speedup": None,
                     "ms_per_step": round(1e3 * med, 2),
                     "ms_min": round(1e3 * min(r.times), 2),
                     "cpu_ms_per_step": round(1e3 * statistics.median(r.cpu_times), 2)})
    ref = next((row for row in rows if row["mode"] == "fp32" and row["img_per_s"]), None)
    if ref is not None:
        for row in rows:
            if row["img_per_s"]:
                row["speedup"] = round(row["img_per_s"] / ref["img_per_s"], 3)
                # process CPU time: less distorted by other processes on a shared machine
                row["speedup_cpu_time"] = round(ref["cpu_ms_per_step"] / row["cpu_ms_per_step"],
                                                3) if row["cpu_ms_per_step"] > 0 else None
    try:
        sha = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                             text=True, cwd=Path(__file__).resolve().parent,
                             timeout=5).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        sha = None
    return {"modes": rows, "cpu": cpu_info(), "device": device, "device_name": dev_name,
            "torch": torch.__version__, "threads": torch.get_num_threads(),
            "config": {"variant": variant, "net": net, "seeds": seeds,
                       "batch_size": cfg.batch_size, "steps": steps, "warmup": warmup,
                       "vmap": use_vmap, "data_generation": "included"},
            "loadavg": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "git_commit": sha}


def format_table(rep: dict) -> str:
    """A Markdown table of a :func:`bench_train` report."""
    c = rep["config"]
    cpu = rep["cpu"]
    lines = [f"bench train: {c['variant']} / {c['net']}, {c['seeds']} seed(s) x batch "
             f"{c['batch_size']}, {rep['device']} ({rep['device_name']}; flags "
             f"{' '.join(cpu['flags']) or '-'}), torch {rep['torch']}, {rep['threads']} "
             f"threads, median of {c['steps']} steps", "",
             "| mode | img/s | speedup | ms/step | speedup (CPU time) |",
             "|---|---:|---:|---:|---:|"]
    for r in rep["modes"]:
        if r["img_per_s"] is None:
            lines.append(f"| {r['mode']} | unavailable: {r['unavailable']} | | |")
        else:
            sp = "-" if r["speedup"] is None else f"{r['speedup']:.2f}x"
            spc = r.get("speedup_cpu_time")
            lines.append(f"| {r['mode']} | {r['img_per_s']:.0f} | {sp} | "
                         f"{r['ms_per_step']:.1f} | {'-' if spc is None else f'{spc:.2f}x'} |")
    return "\n".join(lines)


def _modes(text: str) -> list[str]:
    parts = [p.strip() for p in text.split(",") if p.strip()]
    bad = [p for p in parts if p not in MODES]
    if bad or not parts:
        raise argparse.ArgumentTypeError(f"expected a comma list of {', '.join(MODES)}, got "
                                         f"{text!r}")
    return parts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``stnlab bench train ...`` (wired into ``stnlab bench`` by :mod:`proofs.cli`)."""
    from models.mnist_nets import NETS, VARIANT_SHAPES

    parser.add_argument("--suite", default="mnist", choices=("mnist",))
    parser.add_argument("--variant", required=True, choices=tuple(VARIANT_SHAPES))
    parser.add_argument("--net", required=True, choices=NETS)
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--batch-size", type=int, default=None,
                        help="images per seed and step (default: the small preset's)")
    parser.add_argument("--seeds", type=int, default=1, help="seeds trained together")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per mode")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per mode first")
    parser.add_argument("--modes", type=_modes, default=list(MODES),
                        help=f"comma list (default all): {','.join(MODES)}")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: torch's default)")
    parser.add_argument("--json", nargs="?", const="-", default=None, metavar="PATH",
                        help="print the report as JSON (or write it to PATH)")


def run(args: argparse.Namespace) -> int:
    """Run :func:`bench_train`; print the table (and JSON). Returns 0."""
    if args.batch_size is not None and args.batch_size < 1:
        raise UsageError(f"--batch-size: expected an int >= 1, got {args.batch_size}")
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads: expected an int >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    for name in ("seeds", "steps"):
        if getattr(args, name) < 1:
            raise UsageError(f"--{name}: expected an int >= 1, got {getattr(args, name)}")
    if args.warmup < 0:
        raise UsageError(f"--warmup: expected an int >= 0, got {args.warmup}")
    rep = bench_train(variant=args.variant, net=args.net, device=args.device,
                      batch_size=args.batch_size, seeds=args.seeds, steps=args.steps,
                      warmup=args.warmup, modes=args.modes,
                      progress=lambda s: print(s, file=sys.stderr, flush=True))
    text = json.dumps(rep, indent=1)
    if args.json == "-":
        print(format_table(rep), file=sys.stderr)
        print(text)
    else:
        print(format_table(rep))
        if args.json is not None:
            path = Path(args.json)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text + "\n")
    return 0
