"""``stnlab train``: train a suite (MNIST: 000 Tables I, II), or list suites / parameters.

Examples::

    stnlab train --list-suites [--json]
    stnlab train --suite mnist --list-params [--json]
    stnlab train --suite mnist --variant all --net all --scale small --out results/mnist-small
    stnlab train --suite mnist --variant R --net STN-C1 --scale paper --seeds 10 \\
        --device cuda --out runs/paper
    stnlab train ... --resume        # continue unfinished runs, keep finished ones
    stnlab train ... --precision bf16 # the step under bf16 autocast (fp32 master weights)
    stnlab train ... --executor ray --address auto --gpus-per-run 0.25   # on a Ray cluster
"""

from __future__ import annotations

import argparse
import fnmatch
import sys
from pathlib import Path

from . import runio
from .errors import UsageError

from .executor import EXECUTORS, ExecutorUnavailable, connect_ray
from .precision import PRECISIONS
from .record import SuiteRecord, check_resume_configs, check_suite_name
from .suites import DataSource, get_suite, suites
from .train import SuiteStopped, TrainingDiverged, run_suite


def parse_seeds(text: str) -> tuple[int, ...]:
    """``--seeds``: ``N`` (seeds 0..N-1), ``A-B`` (A..B inclusive) or ``A,B,...``.

    Raises:
        UsageError: anything else, a seed < 0, an empty range or a repeated seed.
    """
    text = str(text).strip()
    want = "expected --seeds N >= 1, A-B with 0 <= A <= B, or a comma list of distinct ints >= 0"
    try:
        if "," in text:
            seeds = tuple(int(t) for t in text.split(","))
        elif "-" in text[1:]:
            a, b = (int(t) for t in text.split("-", 1))
            seeds = tuple(range(a, b + 1)) if 0 <= a <= b else ()
        else:
            seeds = tuple(range(int(text))) if int(text) >= 1 else ()
    except ValueError:
        seeds = ()
    if not seeds or min(seeds) < 0 or len(set(seeds)) != len(seeds):
        raise UsageError(f"{want}, got {text!r}")
    return seeds


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``stnlab train``."""
    parser.add_argument("--suite", default="mnist",
                        help="experiment suite (see --list-suites; default mnist)")
    parser.add_argument("--list-suites", action="store_true",
                        help="list the suites, one line each, and exit")
    parser.add_argument("--variant", default="all",
                        help="the suite's data variants (MNIST: R, T, S), a comma list, or all")
    parser.add_argument("--net", default="all",
                        help="the suite's network names (MNIST: CNN, STN-C0, ...; gtsrb: "
                             "STN-linearized-d4, ...), a comma list of names or shell "
                             "patterns ('ICSTN-*-d4'), or all")
    parser.add_argument("--scale", default=None,
                        help="smoke, small, medium or paper; required, no default (they "
                             "differ by orders of magnitude: smoke checks the pipeline in "
                             "seconds, small trains a suite for minutes to half an hour)")
    parser.add_argument("--data", default=None, metavar="DIR|standin",
                        help="a directory in the data set's official layout, or 'standin' "
                             "for the suite's named stand-in (default: the suite's own "
                             "source; MNIST: the cache)")
    parser.add_argument("--seeds", default=None, metavar="N|A-B|A,B,...",
                        help="train seeds 0..N-1 together (default 1 at smoke/small, 3 at "
                             "medium, 10 at paper), or the seeds A..B, or a comma list "
                             "(fresh seeds for a pre-registered plan, e.g. 10-14)")
    parser.add_argument("--out", default=None,
                        help="suite output directory (default: ./runs/<suite>-<scale>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue unfinished runs from their checkpoints")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--list-params", action="store_true",
                        help="print every network's parameter count (000 Table VI) and exit")
    runio.add_json_argument(parser, "the suite list, the parameter counts, or the runs' "
                            "metrics (suite.json)")
    g = parser.add_argument_group("overrides of the scale's preset")
    g.add_argument("--iters", type=int, default=None, help="steps at the initial lr")
    g.add_argument("--iters-low", type=int, default=None, help="steps at lr / 10")
    g.add_argument("--batch-size", type=int, default=None)
    g.add_argument("--lr", type=float, default=None, help="initial learning rate")
    g.add_argument("--test-digits", type=int, default=None)
    g.add_argument("--test-perturb", type=int, default=None)
    g.add_argument("--checkpoint-every", type=int, default=None)
    g.add_argument("--method", default=None, help="ST sampler: bilinear, linearized, multiscale")
    vm = g.add_mutually_exclusive_group()
    vm.add_argument("--no-vmap", action="store_true", help="train seeds one after another")
    vm.add_argument("--vmap", action="store_true",
                    help="vmap the seeds (default: chosen per device by measurement, "
                         "models.config.default_vmap: seed by seed on the CPU and for (S) "
                         "on a GPU)")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="set_",
                   help="any other field of the suite's run config, e.g. loc_lr=0.01 (the "
                        "localization lr multiplier of svhn / plankton); VALUE is read as "
                        "JSON (a number, true, [1, 2]) else taken as a string; repeatable; "
                        "the run's config.json records it")
    g.add_argument("--precision", default=None, choices=PRECISIONS,
                   help="training step: fp32 (default, exact reproduction), bf16 autocast "
                        "with fp32 master weights, channels_last, bf16_channels_last")
    e = parser.add_argument_group("executor")
    e.add_argument("--executor", default="local", choices=EXECUTORS,
                   help="local (in this process, default) or ray (one task per run)")
    e.add_argument("--address", default=None,
                   help="Ray cluster address (default: a local Ray instance; 'auto': the "
                        "running cluster)")
    e.add_argument("--cpus-per-run", type=float, default=1,
                   help="Ray CPUs (and torch threads) per task (default 1)")
    e.add_argument("--gpus-per-run", type=float, default=0,
                   help="Ray GPUs per task; a fraction shares a device (default 0)")
    parser.add_argument("--drop-checkpoints", action="store_true",
                        help="delete each run's checkpoint.pt once the run has finished "
                             "(for result directories committed without weights)")
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def _pick(value: str, choices, what: str, all_=None) -> list[str]:
    """``value`` ('all' or a comma list) checked against ``choices``; 'all' is ``all_``
    (a suite's ``variants_for(source)`` / ``nets_for(scale)``) when given, else ``choices``."""
    if value == "all":
        return list(choices if all_ is None else all_)
    picked = [v.strip() for v in value.split(",") if v.strip()]
    # shell patterns select by name ('ICSTN-*-d4'); each must match something
    bad = [v for v in picked if not fnmatch.filter(choices, v)]
    if bad or not picked:
        raise UsageError(f"expected --{what} to be 'all' or names / shell patterns from "
                         f"{list(choices)}, got {value!r}")
    return [c for c in choices if any(fnmatch.fnmatchcase(c, v) for v in picked)] \
        if any(set(v) & set("*?[") for v in picked) else picked


def run(args: argparse.Namespace) -> int:
    """Run ``stnlab train``."""
    if args.list_suites:
        rows = {name: s.summary for name, s in sorted(suites().items())}
        if args.json:
            runio.emit_json(args.json, {"suites": [{"name": k, "summary": v}
                                                   for k, v in rows.items()]}, indent=None)
        else:
            for name, summary in rows.items():
                print(f"{name:10s} {summary}")
        return 0
    suite = get_suite(args.suite)
    if args.list_params:
        counts = suite.param_counts()
        if args.json is not None:
            runio.emit_json(args.json, counts, indent=None)
        else:
            print(suite.params_table(counts))
        return 0
    if args.scale is None:  # a bare `stnlab train` must not start a half-hour suite
        raise UsageError(f"expected --scale (one of {', '.join(suite.scales)}; no default): "
                         f"`stnlab train --suite {suite.name} --scale smoke` checks the "
                         f"pipeline in seconds, --scale small trains the whole suite (MNIST: "
                         f"15 networks, ~28 min on 2 cores)")
    if args.scale not in suite.scales:
        raise UsageError(f"expected --scale in {list(suite.scales)}, got {args.scale!r}")
    if args.device.startswith("cuda") and args.executor == "local":  # else: the workers'
        import torch
        if not torch.cuda.is_available():
            raise UsageError(f"--device {args.device}: CUDA is not available on this machine")
    source = DataSource.parse(args.data)
    variants = _pick(args.variant, suite.variants, "variant",
                     getattr(suite, "variants_for", lambda s: suite.variants)(source))
    nets = _pick(args.net, suite.nets, "net",
                 getattr(suite, "nets_for", lambda s: suite.nets)(args.scale))
    seeds = (parse_seeds(args.seeds) if args.seeds is not None
             else tuple(range(suite.default_seeds(args.scale))))
    overrides = dict(seeds=seeds, device=args.device, iters=args.iters,
                     iters_low=args.iters_low, batch_size=args.batch_size, lr=args.lr,
                     test_digits=args.test_digits, test_perturb=args.test_perturb,
                     checkpoint_every=args.checkpoint_every, method=args.method)
    if args.no_vmap:
        overrides["vmap"] = False
    if args.vmap:
        overrides["vmap"] = True
    if args.precision is not None:
        overrides["precision"] = args.precision
    for key, value in parse_sets(args.set_).items():
        if key in ("net", "variant", "scale", "seeds", "device"):
            raise UsageError(f"--set {key}=...: use --{key} instead")
        if overrides.get(key) is not None:
            raise UsageError(f"--set {key}=...: {key} is already set by its own option; give "
                             f"it once")
        overrides[key] = value
    if args.executor == "local" and (args.address is not None or args.gpus_per_run
                                     or args.cpus_per_run != 1):
        raise UsageError("--address, --gpus-per-run and --cpus-per-run need --executor ray")
    # Every argument is checked before anything is written or trained.
    cfgs = [suite.preset(args.scale, v, n, **overrides) for v in variants for n in nets]
    suite.check_source(source)
    if args.out is None:
        args.out = str(Path("runs") / f"{suite.name}-{args.scale}")
    out = runio.check_output_dir(args.out, arg="--out")
    check_suite_name(out, suite.name)
    if args.resume:
        if not out.is_dir():
            raise UsageError(f"--resume: {out} does not exist; nothing to resume (drop "
                             f"--resume to start this run)")
        saved = SuiteRecord.load_index(out, args.scale).get("scale")
        if saved != args.scale:
            raise UsageError(f"--resume: {out} holds a --scale {saved} suite, asked for "
                             f"--scale {args.scale}; resume with --scale {saved} or choose "
                             f"another --out")
        check_resume_configs(out, cfgs)
    if args.executor == "ray":  # the cluster and its resources before anything is written
        try:
            started = connect_ray(args.address, cpus=args.cpus_per_run,
                                  gpus=args.gpus_per_run)
        except ExecutorUnavailable as e:
            print(f"stnlab train: error: {e}", file=sys.stderr)
            return 2
        try:
            print(f"stnlab train: writing to {out}", file=sys.stderr)
            return _run_tasks(args, suite, variants, nets, out, overrides)
        finally:
            if started:
                import ray
                ray.shutdown()
    print(f"stnlab train: writing to {out}", file=sys.stderr)
    stopped = None
    try:
        index = run_suite(variants, nets, args.out, scale=args.scale, resume=args.resume,
                          progress=not args.quiet, keep_checkpoints=not args.drop_checkpoints,
                          suite=suite, source=source, **overrides)
    except SuiteStopped as e:  # the other runs finished: list them, then say which stopped
        stopped = e
        index = SuiteRecord.load_index(out, args.scale)
    except TrainingDiverged as e:
        print(f"stnlab train: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"stnlab train: interrupted; the last checkpoints are kept: continue with "
              f"`{resume_command(args, suite.name, out)}`", file=sys.stderr)
        raise
    for v, row in index["runs"].items():
        for n, r in row.items():
            if v in variants and n in nets and r:
                err = r.get("error", {}).get("mean")
                pose = r.get("pose_std", {}).get("mean")
                print(f"{v} {n:8s} error {runio.pct(err):>6s}" if err is not None else f"{v} {n}",
                      f"pose std {pose:.3f} {r['pose_std']['unit']}" if pose is not None else "",
                      file=sys.stderr)
    print(f"stnlab train: wrote {args.out}/suite.json", file=sys.stderr)
    if args.json is not None:
        runio.emit_json(args.json, index)
    if stopped is not None:
        print(f"stnlab train: error: {stopped}", file=sys.stderr)
        return 1
    return 0


#: The options that change what a run computes or where its data come from, as
#: ``(dest, flag)``: the resume command repeats each one that was given.
_RUN_OPTIONS = (("seeds", "--seeds"), ("data", "--data"), ("device", "--device"),
                ("iters", "--iters"), ("iters_low", "--iters-low"),
                ("batch_size", "--batch-size"), ("lr", "--lr"),
                ("test_digits", "--test-digits"), ("test_perturb", "--test-perturb"),
                ("checkpoint_every", "--checkpoint-every"), ("method", "--method"),
                ("precision", "--precision"), ("executor", "--executor"),
                ("address", "--address"), ("cpus_per_run", "--cpus-per-run"),
                ("gpus_per_run", "--gpus-per-run"))
_RUN_DEFAULTS = {"device": "cpu", "executor": "local", "cpus_per_run": 1, "gpus_per_run": 0}


def resume_command(args: argparse.Namespace, suite: str, out) -> str:
    """The ``stnlab train`` command that continues this one: the same suite, scale,
    variants, networks and every override given (``--lr``, ``--set``, ...), plus
    ``--resume`` (a resume with other settings is refused: :func:`check_resume_configs`)."""
    import shlex

    argv = ["stnlab", "train", "--suite", suite, "--scale", args.scale, "--variant",
            args.variant, "--net", args.net]
    for dest, flag in _RUN_OPTIONS:
        value = getattr(args, dest, None)
        if value is not None and value != _RUN_DEFAULTS.get(dest):
            argv += [flag, str(value)]
    if getattr(args, "no_vmap", False):
        argv.append("--no-vmap")
    if getattr(args, "vmap", False):
        argv.append("--vmap")
    for item in getattr(args, "set_", []) or []:
        argv += ["--set", item]
    if getattr(args, "drop_checkpoints", False):
        argv.append("--drop-checkpoints")
    argv += ["--out", str(out), "--resume"]
    return shlex.join(argv)


def parse_sets(items) -> dict:
    """``["loc_lr=0.01", "init=he"]`` -> ``{"loc_lr": 0.01, "init": "he"}`` (``--set``).

    Values are JSON where they parse as JSON (numbers, ``true``, lists: a list becomes a
    tuple, as config fields hold them), else strings. The suite's preset checks the keys
    and values.

    Raises:
        UsageError: an item without ``=``, a key that is not an identifier, or a key twice.
    """
    import json

    out = {}
    for item in items:
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or not key.isidentifier():
            raise UsageError(f"--set: expected KEY=VALUE with KEY a config field name, got "
                             f"{item!r}")
        if key in out:
            raise UsageError(f"--set: {key} given twice")
        try:
            value = json.loads(raw)
        except ValueError:
            value = raw
        out[key] = tuple(value) if isinstance(value, list) else value
    return out


def _run_tasks(args, suite, variants, nets, out, overrides) -> int:
    """``--executor ray``: one task per run; failed tasks reported, the others go on."""
    from .suite_tasks import run_suite_tasks, suite_tasks

    tasks = suite_tasks(suite.name, variants, nets, out, scale=args.scale,
                        overrides=overrides, data=args.data,
                        keep_checkpoint=not args.drop_checkpoints)
    try:
        index, failures = run_suite_tasks(
            tasks, out, scale=args.scale, executor=args.executor, address=args.address,
            cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run,
            progress=not args.quiet)
    except ExecutorUnavailable as e:
        print(f"stnlab train: error: {e}", file=sys.stderr)
        return 2
    for f in failures:
        print(f"stnlab train: task {f.name} failed: {f.error} (log: {f.log_path}); rerun "
              f"the same command to resume it", file=sys.stderr)
    stopped = [(v, n, s) for v, row in index.get("stopped", {}).items() if v in variants
               for n, s in row.items() if n in nets]
    for v, n, s in stopped:
        print(f"stnlab train: {v}/{n} {s['reason']} at step {s['step']} (kept as stopped on "
              f"resume; remove {SuiteRecord.run_dir(out, v, n)} to train it again)",
              file=sys.stderr)
    print(f"stnlab train: {len(tasks) - len(failures) - len(stopped)}/{len(tasks)} runs done; "
          f"wrote {out}/suite.json", file=sys.stderr)
    if args.json is not None:
        runio.emit_json(args.json, index)
    return 1 if failures or stopped else 0
