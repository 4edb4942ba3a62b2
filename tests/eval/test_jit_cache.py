"""numba's compiled-function cache goes to the user's cache folder, never into the package."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import medseg

PACKAGE = Path(medseg.__file__).resolve().parent

CODE = """
import numpy as np
from medseg.eval import _flooding
from medseg.eval._jit import cache_dir
_flooding._flood(np.zeros((4, 4), dtype=np.int32))
print(cache_dir())
print(_flooding._flood._cache._cache_path)
"""


def test_compiled_functions_are_cached_in_the_user_cache_dir(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    out = subprocess.run(
        [sys.executable, "-c", CODE], capture_output=True, text=True, env=env, check=True, timeout=300
    ).stdout.split()
    assert Path(out[0]) == tmp_path / "medseg" / "numba"
    assert Path(out[1]).is_relative_to(tmp_path) and not Path(out[1]).is_relative_to(PACKAGE)
    assert list((tmp_path / "medseg" / "numba").rglob("*.nbi"))
