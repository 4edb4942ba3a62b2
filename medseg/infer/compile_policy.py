"""When :class:`medseg.infer.sliding_window.SlidingWindow` compiles its model, and the compiled models.

Compiling (``torch.compile`` with frozen weights) costs a fixed time once and then makes
windows faster; :func:`compile_pays_off` weighs the two. A job that predicts in many calls
(block by block, or many images) announces its windows with :func:`planned`, so the
decision counts the whole job. Compiled models are kept per model object and layout.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Callable, Iterator

import torch

__all__ = ["compile_pays_off", "planned"]


#: Seconds a first compiled call takes (inductor, frozen weights, whole graph) and how much
#: faster compiled windows then run, measured with MONAI's BasicUNet (features 16-128) on
#: 2 CPU threads: about 20 s in 2D and 40 s in 3D, windows 1.5-1.8x faster (medseg bench --compile).
_COMPILE_SECONDS = {2: 20.0, 3: 40.0}
_COMPILED_SPEEDUP = 1.5


def compile_pays_off(
    windows: int, seconds_per_window: float, *, compile_seconds: float, speedup: float = _COMPILED_SPEEDUP
) -> bool:
    """Whether compiling before ``windows`` more windows finishes sooner than running them uncompiled.

    Uncompiled they take ``windows * seconds_per_window``; compiled, ``compile_seconds`` plus
    that divided by ``speedup``. Compiling pays off when the time it saves is larger than
    the time it takes.

    Parameters
    ----------
    windows : int
        Windows left to predict.
    seconds_per_window : float
        Measured uncompiled time of one window.
    compile_seconds : float
        Expected time of the first compiled call.
    speedup : float
        Expected compiled speed-up per window.
    """
    return windows * seconds_per_window * (1 - 1 / speedup) > compile_seconds


# torch.compile(model) with frozen weights, once per model object and channels-last choice
_COMPILED: weakref.WeakKeyDictionary[torch.nn.Module, dict[bool, Callable]] = weakref.WeakKeyDictionary()
#: Windows a planned job (:meth:`SlidingWindow.planned`) has still to run, per model.
_PLANNED: weakref.WeakKeyDictionary[torch.nn.Module, int] = weakref.WeakKeyDictionary()
#: The last automatic compile decision said for a model.
_DECIDED: weakref.WeakKeyDictionary[torch.nn.Module, bool] = weakref.WeakKeyDictionary()


@contextlib.contextmanager
def planned(model: torch.nn.Module, windows: int) -> Iterator[None]:
    """Inside it, the automatic compile decision for ``model`` counts the whole job's ``windows``.

    A job that predicts in many calls (block by block, or many small images) repays
    compiling even when no single call does. Each call made inside subtracts its windows
    from the plan.
    """
    _PLANNED[model] = max(0, int(windows))
    try:
        yield
    finally:
        _PLANNED.pop(model, None)
