"""Challenge formats by name: ``medseg evaluate/predict --format NAME`` and a dataset's challenge format.

The built-in formats register themselves when :mod:`medseg.eval.formats` is imported;
:func:`register_format` adds one more (a new format is one module defining a
:class:`~medseg.eval.formats.base.ChallengeFormat` subclass, registered at import).
``medseg evaluate --workers N`` looks formats up by name in its worker processes: a
format registered at run time reaches them where they are forked (Linux); elsewhere,
register it in a module the workers import, or score with ``--workers 1``.
"""

from __future__ import annotations

import difflib

from medseg.errors import ConfigError
from medseg.eval.formats.base import ChallengeFormat

__all__ = ["FORMATS", "format_names", "get_format", "register_format", "unregister_format"]

#: Name -> format, in registration order.
FORMATS: dict[str, ChallengeFormat] = {}


def register_format(fmt: ChallengeFormat, *, replace: bool = False) -> ChallengeFormat:
    """Add ``fmt`` to the registry under ``fmt.name``; returns it.

    Raises
    ------
    ConfigError
        ``fmt`` is not a :class:`ChallengeFormat`, has no name, or the name is taken (unless ``replace``).
    """
    if not isinstance(fmt, ChallengeFormat) or not fmt.name:
        raise ConfigError(f"a challenge format must be a named ChallengeFormat instance, got {fmt!r}")
    if fmt.name in FORMATS and not replace:
        raise ConfigError(f"format {fmt.name!r} is registered already; pass replace=True to replace it")
    FORMATS[fmt.name] = fmt
    return fmt


def unregister_format(name: str) -> None:
    """Remove a registered format (a test's toy format); unknown names are ignored."""
    FORMATS.pop(name, None)


def format_names() -> list[str]:
    """The registered format names, sorted."""
    return sorted(FORMATS)


def get_format(name: str | ChallengeFormat) -> ChallengeFormat:
    """The format registered as ``name`` (a format object is returned as it is).

    Raises
    ------
    ConfigError
        Unknown name; the message suggests the closest one and lists the choices.
    """
    if isinstance(name, ChallengeFormat):
        return name
    try:
        return FORMATS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(FORMATS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown format {name!r}{hint}; choose from {', '.join(format_names())}") from None
