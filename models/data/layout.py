"""Official on-disk layouts of the data sets we cannot download: the contract every reader keeps.

A reader module (``models/data/<name>.py``, e.g. ``svhn``, ``plankton``, ``gtsrb``,
``cub``) exposes

* ``LAYOUT``: a one-line description of the official layout it reads, quoted in errors;
* ``info(root) -> dict``: at least ``{"dataset": name, "splits": {split: count},
  "classes": int}``, read from the files without decoding every image;
* a loader returning tensors (its own signature, documented in the module).

A directory in the wrong layout raises :class:`DatasetLayoutError` (a ``ValueError``),
whose one-line message names the directory, what is missing or malformed, and the
expected layout (``LAYOUT``). ``stnlab data info NAME --from DIR`` prints that line and
exits 2.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DatasetLayoutError", "READERS", "require"]

#: Data sets read from a user's directory: name -> reader module.
READERS = {
    "svhn": "models.data.svhn",
    "plankton": "models.data.plankton",
    "gtsrb": "models.data.gtsrb",
    "cub": "models.data.cub",
}


class DatasetLayoutError(ValueError):
    """A data set directory is not in the official layout (the message says what is expected)."""


def require(path: Path, what: str, *, dataset: str, layout: str, is_dir: bool = False) -> Path:
    """Return ``path`` if it exists (as a directory when ``is_dir``), else raise one line.

    Raises:
        DatasetLayoutError: ``"<dataset>: expected <what> at <path>; expected layout: <layout>"``.
    """
    path = Path(path)
    ok = path.is_dir() if is_dir else path.is_file()
    if not ok:
        raise DatasetLayoutError(f"{dataset}: expected {what} at {path}; expected layout: "
                                 f"{layout}")
    return path
