"""numba's ``njit`` with an on-disk cache outside the installed package.

``numba.njit(cache=True)`` writes its ``.nbi``/``.nbc`` files into ``__pycache__`` next
to the source file when that folder is writable, i.e. into an installed package's
``site-packages``. :data:`njit_cached` caches in ``NUMBA_CACHE_DIR`` when the user set it,
else in the user's cache folder (``$XDG_CACHE_HOME/medseg/numba``, default
``~/.cache/medseg/numba``).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any

import numba
from numba.core import config

#: numba's settings module (its attributes are set from the environment at run time).
_CONFIG: Any = config

__all__ = ["cache_dir", "njit_cached"]


def cache_dir() -> Path:
    """The folder of medseg's compiled numba functions."""
    if _CONFIG.CACHE_DIR:
        return Path(_CONFIG.CACHE_DIR)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "medseg" / "numba"


# read by numba's cache locator when a cached function is compiled, not at numba's import
_CONFIG.CACHE_DIR = str(cache_dir())

#: ``numba.njit(cache=True, nogil=True)``, cached in :func:`cache_dir`.
njit_cached = functools.partial(numba.njit, cache=True, nogil=True)
