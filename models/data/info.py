"""``stnlab data info NAME --from DIR [--json]``: a data set in its official layout.

Dispatches through :data:`models.data.layout.READERS` (name -> reader module): the reader's
``info(root)`` returns at least ``{"dataset", "splits": {split: count}, "classes"}``. A
reader that is not in this build, or a directory in the wrong layout
(:class:`~models.data.layout.DatasetLayoutError`), is one line and exit 2.

A new data set is a reader module ``models/data/<name>.py`` (``LAYOUT``, ``info``, a
loader) plus its line in ``READERS``; nothing here changes.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from pathlib import Path

from .layout import READERS, DatasetLayoutError

__all__ = ["NoReader", "dataset_info", "add_arguments", "run"]


class NoReader(ValueError):
    """The data set has no reader module in this build."""


def dataset_info(name: str, root: str | Path) -> dict:
    """``info(root)`` of the reader of ``name``.

    Raises:
        NoReader: ``name`` is unknown, or its reader module is not in this build.
        NotADirectoryError: ``root`` is not a directory.
        DatasetLayoutError: ``root`` is not in the official layout.
    """
    module = READERS.get(name)
    if module is None:
        raise NoReader(f"no reader for {name} in this build (known: {', '.join(READERS)})")
    try:
        reader = importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name == module:
            raise NoReader(f"no reader for {name} in this build") from None
        raise
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetLayoutError(f"{name}: expected --from to be a directory, got {root}; "
                                 f"expected layout: {getattr(reader, 'LAYOUT', '?')}")
    return reader.info(root)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``NAME`` and ``--from DIR`` on the ``info`` action (``--json`` is there already)."""
    parser.add_argument("name", nargs="?", default=None, metavar="NAME",
                        help=f"a data set read from --from DIR: {', '.join(READERS)}")
    parser.add_argument("--from", dest="from_dir", default=None, metavar="DIR",
                        help="the data set's directory in its official layout")


def wants(args: argparse.Namespace) -> bool:
    """Whether ``stnlab data info`` was asked about a data set directory (not the cache)."""
    return getattr(args, "name", None) not in (None, "mnist") or \
        getattr(args, "from_dir", None) is not None


def run(args: argparse.Namespace) -> int:
    """Print the data set's info (JSON with ``--json``); exit 2 on a layout error."""
    if args.name is None or args.from_dir is None:
        raise ValueError("data info: expected NAME and --from DIR, e.g. "
                         "`stnlab data info svhn --from ~/data/svhn`")
    try:
        info = dataset_info(args.name, args.from_dir)
    except DatasetLayoutError as e:
        print(f"stnlab data: error: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    splits = ", ".join(f"{k} {v}" for k, v in info.get("splits", {}).items())
    print(f"{info.get('dataset', args.name)}: {splits}; {info.get('classes')} classes "
          f"({args.from_dir})")
    return 0
