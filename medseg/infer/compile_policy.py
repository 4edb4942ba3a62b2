"""When :class:`medseg.infer.sliding_window.SlidingWindow` compiles its model, and the compiled models.

Compiling (``torch.compile`` with frozen weights) costs a fixed time once and then makes
windows faster; :func:`compile_pays_off` weighs the two. A job that predicts in many calls
(block by block, or many images) announces its windows with :func:`planned`, so the
decision counts the whole job. Compiled models are kept per model object and layout.
"""

from __future__ import annotations

import contextlib
import logging
import weakref
from collections.abc import Callable, Iterator

import torch

from medseg.infer.layout import channels_last_view

__all__ = ["compile_pays_off", "decide_compile", "is_compiled", "network", "planned"]

logger = logging.getLogger(__name__)


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


def decide_compile(
    model: torch.nn.Module, windows: int, seconds_per_window: float, *, spatial_dims: int
) -> bool:
    """Whether to compile ``model`` now for the ``windows`` left (:func:`compile_pays_off`), said in one log line.

    The line is said once per model and outcome (at debug level after that): block-wise
    jobs decide in every block.
    """
    compile_seconds = _COMPILE_SECONDS.get(spatial_dims, max(_COMPILE_SECONDS.values()))
    compiling = compile_pays_off(windows, seconds_per_window, compile_seconds=compile_seconds)
    repeated = _DECIDED.get(model) is compiling
    _DECIDED[model] = compiling
    logger.log(
        logging.DEBUG if repeated else logging.INFO,
        "%s the model: %d windows left at %.3f s each uncompiled (%.0f s) against about %.0f s to "
        "compile and %.1fx faster windows (--compile / --no-compile decide)",
        "compiling" if compiling else "not compiling",
        windows,
        seconds_per_window,
        windows * seconds_per_window,
        compile_seconds,
        _COMPILED_SPEEDUP,
    )
    return compiling


def is_compiled(model: torch.nn.Module, *, channels_last: bool) -> bool:
    """Whether :func:`network` has already compiled ``model`` in this layout (nothing left to pay)."""
    return channels_last in _COMPILED.get(model, {})


def network(model: torch.nn.Module, *, compiled: bool, channels_last: bool) -> Callable:
    """``model``, its channels-last view, or either compiled with frozen weights (compiled once per model and layout)."""
    if not compiled:
        return channels_last_view(model) if channels_last else model
    versions = _COMPILED.setdefault(model, {})
    if channels_last not in versions:
        net = channels_last_view(model) if channels_last else model
        versions[channels_last] = torch.compile(net, options={"freezing": True})
    return versions[channels_last]
