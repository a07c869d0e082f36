"""The typed run record: one place that owns the ``<suite>/<variant>/<net>/`` layout.

A *run directory* holds one network trained on one variant (several seeds)::

    config.json    the resolved config          env.json       where it ran (models.runio)
    log.jsonl      one line per log interval    metrics.json   final metrics
    fig_data.json  data the figures draw from   gallery.npz    a few inputs / ST outputs
    checkpoint.pt  (+ .sha256, checkpoint.prev.pt) while training

A *suite directory* holds run directories ``<variant>/<net>/`` and ``suite.json``.
Drivers write through :meth:`RunRecord.save` / :meth:`SuiteRecord.save`; the report, the
figures and the claims read :meth:`RunRecord.load` / :meth:`SuiteRecord.load` and never
build these paths themselves.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import runio
from .errors import ConfigError
from .runio import atomic_write_json

__all__ = ["RunRecord", "SuiteRecord", "METRICS", "CONFIG", "ENV", "LOG", "FIG_DATA",
           "GALLERY", "SUITE", "STOPS", "stop_record", "stop_record_of", "config_changes",
           "check_resume_configs", "check_suite_name"]

METRICS, CONFIG, ENV, LOG = "metrics.json", "config.json", "env.json", "log.jsonl"
FIG_DATA, GALLERY, SUITE = "fig_data.json", "gallery.npz", "suite.json"
#: Files a training loop writes when it stops a run before the end, by reason.
STOPS = {"diverged": "diverged.json", "collapsed": "collapsed.json"}


def stop_record(run_dir: str | Path) -> dict | None:
    """Why the run in ``run_dir`` stopped before finishing, else None.

    ``{"reason": "diverged" | "collapsed", "step", "seed", "message"}`` from the
    ``diverged.json`` / ``collapsed.json`` its training loop wrote (``seed`` None where
    the file names none). A run with ``metrics.json`` has finished: None, whatever an
    earlier attempt left.
    """
    run_dir = Path(run_dir)
    if (run_dir / METRICS).exists():
        return None
    for reason, name in STOPS.items():
        d = _read_json(run_dir / name)
        if d is not None:
            return {"reason": reason, "step": d.get("step"), "seed": d.get("seed"),
                    "message": d.get("message", "")}
    return None


def stop_record_of(run_dir: str | Path, error: Exception) -> dict:
    """:func:`stop_record` of a run whose training just raised ``error`` (a divergence or
    collapse); a divergence without its file (none written) is described by the error."""
    return stop_record(run_dir) or {"reason": "diverged", "step": None, "seed": None,
                                    "message": str(error)}


def _section(title: str, intro: str, bullets: list[str]) -> list[str]:
    """A report section: ``### title``, the intro, one bullet each; empty if no bullets."""
    if not bullets:
        return []
    return [f"### {title}", "", intro, ""] + [f"- {b}" for b in bullets] + [""]


def _read_json(path: Path):
    """The JSON in ``path``, None if absent.

    Raises:
        ConfigError: ``path`` exists but is not JSON (one line naming the file).
    """
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise ConfigError(f"{path}: expected JSON as stnlab writes it, got unreadable "
                          f"contents ({str(e).splitlines()[0]})") from None


#: ``stnlab train`` option of each config field (others are ``--set FIELD=...``).
OPTION_OF = {"seeds": "--seeds", "lr": "--lr", "method": "--method", "iters": "--iters",
             "iters_low": "--iters-low", "batch_size": "--batch-size",
             "test_digits": "--test-digits", "test_perturb": "--test-perturb",
             "checkpoint_every": "--checkpoint-every", "precision": "--precision",
             "scale": "--scale"}
#: Execution choices a resumed run may change (they do not change what it computes).
EXECUTION_FIELDS = ("device", "vmap")


def _shown(key: str, value):
    if key == "seeds" and list(value) == list(range(len(value))):
        return len(value)  # what --seeds N asks for
    return value


def config_changes(saved: dict, cfg) -> list[str]:
    """The settings in which ``cfg`` differs from a run's saved ``config.json``, each as
    ``"--lr 0.02 (saved) vs 0.5 (asked)"``; execution choices (``device``, ``vmap``) are
    not counted. Empty when the run is the one ``cfg`` asks for."""
    asked = cfg.to_json()
    try:  # fields added since the run was saved take their defaults, as on load
        saved = type(cfg).from_json(saved).to_json()
    except (ValueError, TypeError):
        pass  # compared as saved: an unknown key shows as a change
    out = []
    for key in sorted(set(saved) | set(asked)):
        if key in EXECUTION_FIELDS:
            continue
        a, b = saved.get(key), asked.get(key)
        if isinstance(a, list):
            a = tuple(a)
        if isinstance(b, list):
            b = tuple(b)
        if a != b:
            opt = OPTION_OF.get(key, f"--set {key}=")
            sep = "" if opt.endswith("=") else " "
            out.append(f"{opt}{sep}{_shown(key, a)} (saved) vs {_shown(key, b)} (asked)")
    return out


def check_suite_name(suite_dir, name: str) -> None:
    """Refuse to train suite ``name`` into a directory that holds another suite.

    The directory's suite is ``suite.json``'s ``"suite"``, else that of its finished runs'
    ``metrics.json``; a new or empty directory takes any suite.

    Raises:
        ConfigError: one line naming the directory's file, its suite and the one asked.
    """
    suite_dir = Path(suite_dir)
    index = _read_json(suite_dir / SUITE) or {}
    held, where = index.get("suite"), suite_dir / SUITE
    if held is None:
        for m in sorted(suite_dir.glob(f"*/*/{METRICS}")):
            held, where = (_read_json(m) or {}).get("suite"), m
            if held is not None:
                break
    if held is not None and held != name:
        raise ConfigError(f"--suite {name}: {suite_dir} holds a {held} suite ({where}); "
                          f"choose another --out (suites never share a directory)")


def check_resume_configs(suite_dir, cfgs) -> None:
    """Refuse to resume ``suite_dir`` with settings other than its runs were started with.

    Every run directory ``<variant>/<net>/`` of ``cfgs`` that holds a ``config.json``
    (finished, stopped or unfinished) must have been started with the same config
    (execution choices aside): ``--resume`` keeps or continues a run, it never silently
    drops a new ``--lr`` or ``--seeds``.

    Raises:
        ConfigError: one line naming the run, the changed settings, saved and asked.
    """
    for cfg in cfgs:
        rd = SuiteRecord.run_dir(suite_dir, cfg.variant, cfg.net)
        saved = _read_json(rd / CONFIG)
        if saved is None:
            continue
        changes = config_changes(saved, cfg)
        if changes:
            state = ("finished" if RunRecord.is_run(rd) else
                     "stopped" if stop_record(rd) is not None else "unfinished")
            raise ConfigError(f"--resume: {rd} ({state}) was started with other settings: "
                              f"{'; '.join(changes)}; resume with the saved ones, or choose "
                              f"another --out (or remove {rd} to train it again)")


@dataclass
class RunRecord:
    """One finished run: its metrics and config, and lazy access to its saved data.

    Attributes:
        path: the run directory.
        metrics: contents of ``metrics.json`` (``variant``, ``net``, ``scale``, ``seeds``,
            ``error``, ... as the suite's evaluation wrote them).
        config: contents of ``config.json`` (None if absent).
    """

    path: Path
    metrics: dict
    config: dict | None = None

    @property
    def variant(self) -> str:
        return self.metrics["variant"]

    @property
    def net(self) -> str:
        return self.metrics["net"]

    @property
    def scale(self) -> str | None:
        return self.metrics.get("scale")

    @classmethod
    def is_run(cls, run_dir: str | Path) -> bool:
        """Whether ``run_dir`` holds a finished run (``metrics.json``)."""
        return (Path(run_dir) / METRICS).is_file()

    @classmethod
    def load(cls, run_dir: str | Path) -> "RunRecord":
        """Read ``metrics.json`` (required) and ``config.json`` (optional).

        Raises:
            FileNotFoundError: ``run_dir`` has no ``metrics.json``.
        """
        run_dir = Path(run_dir)
        m = run_dir / METRICS
        if not m.is_file():
            raise FileNotFoundError(f"RunRecord.load: expected {m} (a finished run), "
                                    f"found none")
        return cls(run_dir, _read_json(m), _read_json(run_dir / CONFIG))

    def save(self) -> None:
        """Write ``metrics.json`` atomically (config and the rest are the driver's)."""
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_json(self.path / METRICS, self.metrics)

    def with_config(self) -> dict:
        """``metrics`` plus ``{"config": config}`` where a config was saved."""
        return {**self.metrics, "config": self.config} if self.config is not None \
            else dict(self.metrics)

    def fig_data(self) -> dict | None:
        """``fig_data.json`` or None."""
        return _read_json(self.path / FIG_DATA)

    def gallery(self) -> dict | None:
        """``{name: array}`` of ``gallery.npz`` or None."""
        p = self.path / GALLERY
        if not p.exists():
            return None
        with np.load(p) as z:
            return {k: z[k] for k in z.files}

    def log(self) -> list[dict]:
        """The rows of ``log.jsonl`` ([] if absent)."""
        p = self.path / LOG
        if not p.exists():
            return []
        return [json.loads(ln) for ln in p.read_text().splitlines() if ln.strip()]


@dataclass
class SuiteRecord:
    """The finished runs of a suite directory, by variant and network.

    Attributes:
        path: the suite directory.
        runs: ``{variant: {net: RunRecord}}`` in the order ``variants`` x ``nets``.
        variants: variant order (given to :meth:`load`, else the directories' sorted names).
        nets: network order (likewise).
        scale: the suite's scale from ``suite.json`` (None if absent).
        stopped: ``{variant: {net: stop_record}}`` of the runs that stopped before
            finishing (diverged, collapsed; :func:`stop_record`).
    """

    path: Path
    runs: dict = field(default_factory=dict)
    variants: tuple = ()
    nets: tuple = ()
    scale: str | None = None
    stopped: dict = field(default_factory=dict)

    @classmethod
    def run_dir(cls, suite_dir: str | Path, variant: str, net: str) -> Path:
        """Where the run of ``net`` on ``variant`` lives."""
        return Path(suite_dir) / variant / net

    @classmethod
    def is_suite(cls, suite_dir: str | Path) -> bool:
        """Whether ``suite_dir`` holds at least one finished run ``<variant>/<net>/``."""
        return any(Path(suite_dir).glob(f"*/*/{METRICS}"))

    @classmethod
    def load(cls, suite_dir: str | Path, *, variants=None, nets=None,
             exclude_scales=()) -> "SuiteRecord":
        """Every finished run ``<variant>/<net>/metrics.json`` under ``suite_dir``.

        Args:
            variants, nets: the order to list runs in (names not given come after, sorted).
            exclude_scales: skip runs whose ``scale`` is one of these (e.g. ``("smoke",)``).
        """
        suite_dir = Path(suite_dir)
        found = {}
        for m in sorted(suite_dir.glob(f"*/*/{METRICS}")):
            rec = RunRecord.load(m.parent)
            if rec.scale in exclude_scales:
                continue
            found[(m.parent.parent.name, m.parent.name)] = rec

        def order(given, names):
            given = tuple(given or ())
            return given + tuple(sorted(set(names) - set(given)))

        vs = order(variants, {v for v, _ in found})
        ns = order(nets, {n for _, n in found})
        runs: dict = {}
        for v in vs:
            for n in ns:
                if (v, n) in found:
                    runs.setdefault(v, {})[n] = found[(v, n)]
        stopped: dict = {}
        for name in STOPS.values():
            for f in sorted(suite_dir.glob(f"*/*/{name}")):
                info = stop_record(f.parent)
                if info is not None:
                    stopped.setdefault(f.parent.parent.name, {})[f.parent.name] = info
        meta = _read_json(suite_dir / SUITE) or {}
        return cls(suite_dir, runs, vs, ns, meta.get("scale"), stopped)

    def collapse_lines(self) -> list[str]:
        """Markdown: the finished runs in which the collapse watch saw a seed's ST leave the
        image (recorded, not stopped: ``metrics["collapse"]``); empty if none."""
        rows = [(v, n, r.metrics["collapse"]["seeds"]) for v, row in self.runs.items()
                for n, r in row.items() if (r.metrics.get("collapse") or {}).get("seeds")]
        return _section(
            "Seeds whose ST collapsed (trained to the end)",
            "The collapse watch (`models.collapse`: under half the sampling points inside the "
            "image while the running error is at chance, for 5 % of the run) saw these seeds "
            "collapse; their errors are in the tables above.",
            [f"{v}/{n}: " + ", ".join(f"seed {s} at step {st}" for s, st in seeds.items())
             for v, n, seeds in rows])

    def stopped_lines(self) -> list[str]:
        """Markdown: one bullet per run that stopped before finishing (empty if none).

        Every report lists these, so a network missing from a table is never silently
        missing: it says it diverged or collapsed, at which step and seed.
        """
        rows = [(v, n, s) for v, row in sorted(self.stopped.items())
                for n, s in sorted(row.items())]
        return _section(
            "Runs that stopped before finishing",
            "Not in the tables above: each stopped with a non-finite loss (diverged) or with "
            "its ST off the image at chance error (collapsed; `models.collapse`). They were "
            "not rerun with another seed or setting.",
            [f"{v}/{n}: {s['reason']} at step {s['step']}"
             + (f", seed {s['seed']}" if s.get("seed") is not None else "")
             for v, n, s in rows])

    def get(self, variant: str, net: str) -> RunRecord | None:
        return self.runs.get(variant, {}).get(net)

    def __len__(self) -> int:
        return sum(len(r) for r in self.runs.values())

    def records(self):
        """Every :class:`RunRecord`, variant-major."""
        return [r for row in self.runs.values() for r in row.values()]

    def as_dicts(self) -> dict:
        """``{variant: {net: metrics + {"config"}}}`` (the report's JSON form)."""
        return {v: {n: r.with_config() for n, r in row.items()} for v, row in self.runs.items()}

    @staticmethod
    def save_index(suite_dir: str | Path, index: dict) -> None:
        """Write ``suite.json``: ``{"scale", "runs": {variant: {net: metrics}}}``."""
        atomic_write_json(Path(suite_dir) / SUITE, index)

    @staticmethod
    def update_index(suite_dir: str | Path, scale: str, runs: dict, *, stopped=None,
                     **fields) -> dict:
        """Merge ``runs`` (``{variant: {net: metrics}}``) and ``fields`` (set if absent) into
        ``suite.json`` under an exclusive lock, and return the merged index.

        ``stopped`` (``{variant: {net: stop_record}}``) goes under the index's
        ``"stopped"``; a run that finishes later leaves it.

        Read, merge and write happen while holding ``suite.json.lock`` (``fcntl.flock``
        where available), so two processes training different variants or networks into
        one suite directory (e.g. (R) and (T) in the background) both keep their entries;
        a plain load-then-save loses the other process's.
        """
        suite_dir = Path(suite_dir)
        suite_dir.mkdir(parents=True, exist_ok=True)
        with open(suite_dir / (SUITE + ".lock"), "a") as lock:
            try:
                import fcntl  # noqa: PLC0415 - POSIX only

                fcntl.flock(lock, fcntl.LOCK_EX)
            except ImportError:  # pragma: no cover - Windows: no lock, last writer wins
                pass
            index = SuiteRecord.load_index(suite_dir, scale)
            for k, v in fields.items():
                index.setdefault(k, v)
            for v, row in runs.items():
                index["runs"].setdefault(v, {}).update(row)
                for n in row:
                    index.get("stopped", {}).get(v, {}).pop(n, None)
            for v, row in (stopped or {}).items():
                index.setdefault("stopped", {}).setdefault(v, {}).update(row)
            if "stopped" in index:
                index["stopped"] = {v: r for v, r in index["stopped"].items() if r}
                if not index["stopped"]:
                    del index["stopped"]
            SuiteRecord.save_index(suite_dir, index)
            return index

    @staticmethod
    def load_index(suite_dir: str | Path, scale: str) -> dict:
        """``suite.json`` as written by :meth:`save_index`; a new one for ``scale`` if absent."""
        d = _read_json(Path(suite_dir) / SUITE)
        if d is None:
            return {"scale": scale, "runs": {}}
        d.setdefault("runs", {})
        return d


@dataclass(frozen=True)
class RunDir:
    """A run directory opened for training (both training loops start here).

    Attributes:
        path: the run directory (created).
        checkpoint: ``checkpoint.pt``; ``previous``: the previous good one.
        has_checkpoint: either exists (a run to resume).
        log: ``log.jsonl``.
        finished: the metrics of a finished run (``metrics.json`` and no checkpoint) that
            ``resume`` keeps, else None.
    """

    path: Path
    checkpoint: Path
    previous: Path
    has_checkpoint: bool
    log: Path
    finished: dict | None


def open_run_dir(run_dir, *, resume: bool) -> RunDir:
    """Create ``run_dir``; refuse to overwrite a finished run or a checkpoint without
    ``resume``.

    Raises:
        ConfigError: a finished run (``metrics.json``) or a checkpoint exists and ``resume``
            is False.
    """
    path = Path(run_dir)
    path.mkdir(parents=True, exist_ok=True)
    ckpt, prev = runio.checkpoint_paths(path)
    has_ckpt = ckpt.exists() or prev.exists()
    finished = None
    if (path / "metrics.json").exists() and not has_ckpt:
        if not resume:
            raise ConfigError(f"train: {path} holds a finished run (metrics.json); pass "
                              f"--resume to keep it or choose another --out")
        finished = RunRecord.load(path).metrics
    elif has_ckpt and not resume:
        raise ConfigError(f"train: {ckpt} exists; pass --resume to continue it or "
                          f"choose another --out")
    return RunDir(path, ckpt, prev, has_ckpt, path / "log.jsonl", finished)


def resume_checkpoint(rd: RunDir, cfg):
    """``(checkpoint, cfg)`` to resume ``rd`` with: the newest good checkpoint and ``cfg``
    with the checkpoint's execution choices (``device`` may differ; a saved ``vmap``, where
    the config has one, is kept).

    Raises:
        ConfigError: the checkpoint was written with a different config (the differing
            fields, saved and asked, in one line).
        CheckpointDamaged: no checkpoint verifies.
    """
    ck, _ = runio.latest_good_checkpoint(rd.path)
    saved = type(cfg).from_json(ck["config"])
    if hasattr(cfg, "vmap") and cfg.vmap != saved.vmap:  # an execution choice
        cfg = dataclasses.replace(cfg, vmap=saved.vmap)
    mine = dataclasses.replace(cfg, device=saved.device)
    if saved != mine:
        diff = {k: (v, getattr(cfg, k)) for k, v in dataclasses.asdict(saved).items()
                if getattr(mine, k) != v}
        raise ConfigError(f"train: --resume with a different config than {rd.checkpoint}: "
                          f"{diff} (saved, asked)")
    return ck, cfg
