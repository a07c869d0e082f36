"""Error types of the library and the command line (all ``ValueError`` subclasses).

The library raises :class:`ConfigError` (a config, preset or run directory that cannot be
used) or another ``ValueError`` subclass; the command-line modules raise
:class:`UsageError` for an argument mistake. ``stnlab`` (:mod:`proofs.cli`) maps every
``ValueError`` to one line and exit status 2.
"""

from __future__ import annotations

__all__ = ["ConfigError", "UsageError"]


class ConfigError(ValueError):
    """A training config, preset or run directory that cannot be used as asked."""


class UsageError(ValueError):
    """A user mistake on the command line (printed as one line by ``stnlab``, exit 2)."""
