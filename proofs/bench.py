"""``stnlab bench sampler``: time the samplers against ``F.grid_sample`` (003 App. A.1).

For each shape ``(N, C, H -> h)`` every sampler runs forward, and forward +
backward (gradient w.r.t. the grid only, as in an STN whose input needs no
gradient), interleaved in one process; we report the median time of each and its
ratio to ``F.grid_sample``'s (wall clock, and process CPU time, which a loaded
machine distorts less), and the peak memory allocated during one forward +
backward (above what was live before it) and its ratio to bilinear's.

Peak memory: on CUDA ``torch.cuda.max_memory_allocated``; on CPU the running sum
of every allocation/free event that ``torch.profiler`` records with
``profile_memory=True`` (tensor storage only, no Python objects).

The grids are affine: a rotation by 0.3 rad and scale 0.9 of the whole image,
sampled at ``h x h`` (so ``H -> h`` is a ``H/h``-fold downsampling).

The row ``gathers_only`` is a floor, not a sampler: a bilinear forward whose
backward only runs the ``K`` extra bilinear gathers (no fit), i.e. what any
``K``-sample method built on ``F.grid_sample`` pays at least.

No timing is asserted anywhere: this is a measurement, and numbers taken on a
shared machine are noisy (the JSON records the thread count and load average).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from models import runio
from models.errors import UsageError

__all__ = ["add_arguments", "run", "bench_sampler", "BENCH_SHAPES", "peak_memory"]

#: (N, C, H, h): the issues' benchmark shapes (input H x H, output h x h; issue 30 added the
#: 64-channel feature map).
BENCH_SHAPES = ((256, 1, 28, 28), (64, 1, 60, 30), (64, 3, 50, 12), (8, 3, 256, 32),
                (32, 64, 32, 32))


class _GathersOnly(torch.autograd.Function):
    """Reference floor: bilinear forward; backward = K bilinear gathers and nothing else.

    Any K-sample method built on ``F.grid_sample`` pays at least this; the row shows
    how much of the linearized sampler's cost is the fit rather than the sampling.
    """

    @staticmethod
    def forward(ctx, x, grid, k):
        ctx.save_for_backward(x, grid)
        ctx.k = k
        return F.grid_sample(x, grid, mode="bilinear", align_corners=False)

    @staticmethod
    def backward(ctx, grad_out):
        x, grid = ctx.saved_tensors
        for _ in range(ctx.k):
            F.grid_sample(x, grid, mode="bilinear", align_corners=False)
        return None, torch.zeros_like(grid), None


def _samplers(num_samples: int, seed: int):
    """Every registered sampler (:mod:`sampling.registry`), then the ``gathers_only`` floor."""
    from sampling import registry

    gen = torch.Generator().manual_seed(seed)
    options = {"linearized": dict(num_samples=num_samples, generator=gen)}

    def run(sampler, opts):
        return lambda x, g: sampler.fn(x, g, align_corners=False, padding_mode="zeros", **opts)

    samplers = {name: run(s, options.get(name, {})) for name, s in registry.SAMPLERS.items()}
    samplers["gathers_only"] = lambda x, g: _GathersOnly.apply(x, g, num_samples)
    return samplers


def _make_inputs(shape, device, dtype, seed):
    n, c, h_in, h_out = shape
    gen = torch.Generator().manual_seed(seed)
    x = torch.rand(n, c, h_in, h_in, generator=gen, dtype=dtype).to(device)
    a, s = 0.3, 0.9
    theta = torch.tensor([[s * math.cos(a), -s * math.sin(a), 0.05],
                          [s * math.sin(a), s * math.cos(a), -0.05]], dtype=dtype)
    grid = F.affine_grid(theta.expand(n, 2, 3), (n, c, h_out, h_out), align_corners=False)
    grid = grid.to(device).requires_grad_(True)
    grad_out = torch.randn(n, c, h_out, h_out, generator=gen, dtype=dtype).to(device)
    return x, grid, grad_out


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


@contextlib.contextmanager
def _quiet_stderr():
    """Silence file descriptor 2 (the profiler's C++ start/stop log lines)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory(fn, device) -> int:
    """Peak bytes allocated while ``fn()`` runs, above what was live before."""
    if device.type == "cuda":
        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize()
        return int(torch.cuda.max_memory_allocated(device) - base)
    from torch.profiler import ProfilerActivity, profile

    with _quiet_stderr(), profile(activities=[ProfilerActivity.CPU],
                                  profile_memory=True) as prof:
        fn()
    allocs = []
    stack = list(prof.profiler.kineto_results.experimental_event_tree())
    while stack:  # every allocation/free event, at any depth, any thread
        ev = stack.pop()
        stack.extend(ev.children)
        extra = ev.extra_fields
        if hasattr(extra, "alloc_size") and str(getattr(extra, "device", "cpu")) == "cpu":
            allocs.append((ev.start_time_ns, int(extra.alloc_size)))
    allocs.sort()
    cur = peak = 0
    for _, size in allocs:
        cur += size
        peak = max(peak, cur)
    return int(peak)


def bench_sampler(*, device="cpu", repeats: int = 20, shapes=BENCH_SHAPES,
                  num_samples: int = 8, dtype=torch.float32, seed: int = 0,
                  progress=None) -> dict:
    """Time every sampler against ``F.grid_sample``; return a JSON-friendly report.

    Args:
        device: ``"cpu"`` or ``"cuda"``.
        repeats: timed repetitions per measurement (after one warm-up).
        shapes: ``(N, C, H, h)`` tuples.
        num_samples: K of the linearized sampler.
        dtype: tensor dtype.
        seed: seed of the inputs and of the linearized sampler's noise.
        progress: optional ``callable(str)`` for progress lines.

    Returns:
        ``{"meta": {...}, "rows": [{shape, method, fwd_ms, fwdbwd_ms, fwd_ratio,
        fwdbwd_ratio, peak_bytes, peak_ratio}, ...]}``.
    """
    device = torch.device(device)
    samplers = _samplers(num_samples, seed)
    rows = []
    for shape in shapes:
        x, grid, grad_out = _make_inputs(shape, device, dtype, seed)

        def fwd(f):
            with torch.no_grad():
                f(x, grid)

        def fwdbwd(f):
            out = f(x, grid)
            (g,) = torch.autograd.grad(out, grid, grad_out)
            return g

        times = {m: {"fwd": [], "fwdbwd": [], "fwd_cpu": [], "fwdbwd_cpu": []}
                 for m in samplers}
        for m, f in samplers.items():  # warm-up
            fwd(f)
            fwdbwd(f)
        for _ in range(repeats):
            for m, f in samplers.items():
                for kind, call in (("fwd", fwd), ("fwdbwd", fwdbwd)):
                    _sync(device)
                    t0, c0 = time.perf_counter(), time.process_time()
                    call(f)
                    _sync(device)
                    times[m][kind].append(time.perf_counter() - t0)
                    times[m][kind + "_cpu"].append(time.process_time() - c0)
        peaks = {m: peak_memory(lambda f=f: fwdbwd(f), device) for m, f in samplers.items()}
        med = {m: {k: statistics.median(v) for k, v in t.items()} for m, t in times.items()}
        for m in samplers:
            rows.append({
                "shape": list(shape), "method": m,
                "fwd_ms": med[m]["fwd"] * 1e3, "fwdbwd_ms": med[m]["fwdbwd"] * 1e3,
                "fwd_ratio": med[m]["fwd"] / med["bilinear"]["fwd"],
                "fwdbwd_ratio": med[m]["fwdbwd"] / med["bilinear"]["fwdbwd"],
                "fwd_cpu_ratio": med[m]["fwd_cpu"] / max(med["bilinear"]["fwd_cpu"], 1e-9),
                "fwdbwd_cpu_ratio": (med[m]["fwdbwd_cpu"]
                                     / max(med["bilinear"]["fwdbwd_cpu"], 1e-9)),
                "peak_bytes": peaks[m],
                "peak_ratio": peaks[m] / max(peaks["bilinear"], 1),
            })
        if progress:
            progress(f"shape {shape}: linearized fwd+bwd x"
                     f"{med['linearized']['fwdbwd'] / med['bilinear']['fwdbwd']:.2f}")
    meta = {
        "torch": torch.__version__, "device": str(device),
        "device_name": (torch.cuda.get_device_name(device) if device.type == "cuda"
                        else "cpu"),
        "threads": torch.get_num_threads(), "repeats": repeats, "num_samples": num_samples,
        "dtype": str(dtype).replace("torch.", ""), "seed": seed,
        "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        "cpu_count": os.cpu_count(),
        "linearized_kernel": _kernel_name(device),
        # which of torch's own kernel copies run (ATEN_CPU_CAPABILITY=avx2 emulates an AVX2
        # CPU for the bilinear baseline) and what the CPU has
        "aten_cpu_capability": (torch.backends.cpu.get_cpu_capability()
                                if device.type == "cpu" else None),
        "cpu_flags": _cpu_flags() if device.type == "cpu" else None,
    }
    return {"meta": meta, "rows": rows}


def _cpu_flags() -> list[str]:
    """The SIMD flags of this CPU that decide which kernel copies run (Linux only)."""
    try:
        text = open("/proc/cpuinfo").read()
    except OSError:
        return []
    flags = next((ln.split(":", 1)[1].split() for ln in text.splitlines()
                  if ln.startswith("flags")), [])
    keep = ("avx2", "fma", "avx512f", "avx512dq", "avx512bw", "avx512vl", "avx512_bf16",
            "amx_tile")
    return [f for f in keep if f in flags]


def _kernel_name(device) -> str:
    """Which backward the linearized rows ran: the fused kernel (and its SIMD copy) or eager."""
    from sampling import _ext

    ops = _ext.load(device.type) if device.type in _ext.KERNELS else None
    if ops is None:
        return "eager"
    if device.type != "cpu":
        return f"fused-{device.type}"
    copy = {0: ops.simd(), 1: "avx2" if ops.simd() != "portable" else "portable",
            2: "portable"}[_ext.isa]
    return f"fused-cpu ({copy})"


def format_table(report: dict) -> str:
    """A Markdown table of a :func:`bench_sampler` report."""
    m = report["meta"]
    lines = [f"sampler benchmark: torch {m['torch']}, {m['device']} ({m['device_name']}), "
             f"{m['threads']} thread(s), K={m['num_samples']}, {m['dtype']}, "
             f"median of {m['repeats']}, linearized backward: "
             f"{m.get('linearized_kernel', '?')}, ATen CPU capability "
             f"{m.get('aten_cpu_capability')}, CPU flags {' '.join(m.get('cpu_flags') or [])}, "
             f"load average {' '.join(f'{v:.1f}' for v in (m.get('load_average') or []))}",
             "",
             "| N, C, H -> h | method | fwd ms | fwd ratio | fwd+bwd ms | fwd+bwd ratio "
             "| fwd+bwd CPU-time ratio | peak MiB | peak ratio |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        n, c, h_in, h_out = r["shape"]
        lines.append(f"| {n}, {c}, {h_in} -> {h_out} | {r['method']} | {r['fwd_ms']:.3f} | "
                     f"{r['fwd_ratio']:.2f} | {r['fwdbwd_ms']:.3f} | {r['fwdbwd_ratio']:.2f} | "
                     f"{r['fwdbwd_cpu_ratio']:.2f} | "
                     f"{r['peak_bytes'] / 2**20:.2f} | {r['peak_ratio']:.2f} |")
    return "\n".join(lines)


def _parse_shape(text: str):
    try:
        parts = tuple(int(p) for p in text.split(","))
    except ValueError:
        parts = ()
    if len(parts) != 4 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"expected N,C,H,h with positive ints, got {text!r}")
    return parts


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``stnlab bench sampler ...``."""
    sub = parser.add_subparsers(dest="bench_target", metavar="TARGET", required=True)
    p = sub.add_parser("sampler", help="time the samplers against F.grid_sample",
                       description="Median forward and forward+backward times of the "
                       "linearized and multi-scale samplers relative to F.grid_sample, "
                       "and peak memory, on the issue's shapes.")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--repeats", type=int, default=20, help="timed repetitions (default 20)")
    runio.add_json_argument(p, "the report")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads (default: torch's default)")
    p.add_argument("--num-samples", type=int, default=8, help="K (default 8)")
    p.add_argument("--dtype", default="float32", choices=("float32", "float64"))
    p.add_argument("--shape", type=_parse_shape, action="append", default=None,
                   metavar="N,C,H,h", help="benchmark this shape instead (repeatable)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--cpu-kernel", default="best", choices=tuple(_CPU_KERNELS),
                   help="which copy of the fused CPU kernel's loops runs (default: the best "
                   "this CPU has; avx2 / portable to measure what other CPUs would get)")


#: ``--cpu-kernel`` choices -> :data:`sampling._ext.isa`.
_CPU_KERNELS = {"best": 0, "avx2": 1, "portable": 2}


def run(args: argparse.Namespace) -> int:
    """Run the benchmark, print the table, optionally write JSON. Returns 0."""
    if args.device == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda: CUDA is not available on this machine")
    if args.repeats < 1:
        raise UsageError(f"--repeats: expected an int >= 1, got {args.repeats}")
    if args.num_samples < 1:
        raise UsageError(f"--num-samples: expected an int >= 1, got {args.num_samples}")
    if args.threads is not None:
        if args.threads < 1:
            raise UsageError(f"--threads: expected an int >= 1, got {args.threads}")
        torch.set_num_threads(args.threads)
    from sampling import _ext

    isa = _ext.isa
    _ext.isa = _CPU_KERNELS[getattr(args, "cpu_kernel", "best")]
    try:
        report = bench_sampler(device=args.device, repeats=args.repeats,
                               shapes=tuple(args.shape) if args.shape else BENCH_SHAPES,
                               num_samples=args.num_samples, dtype=getattr(torch, args.dtype),
                               seed=args.seed,
                               progress=lambda s: print(s, file=sys.stderr, flush=True))
    finally:
        _ext.isa = isa
    print(format_table(report), file=sys.stderr if args.json == "-" else sys.stdout)
    if args.json is not None:
        runio.emit_json(args.json, report, indent=2)
    return 0
