"""Sliding-window inference, predictors and post-processing.

Examples
--------
>>> from medseg.infer import Predictor, SlidingWindow
>>> predictor = Predictor.from_checkpoint("runs/isbi", SlidingWindow((256, 256), overlap=0.5))  # doctest: +SKIP
>>> prediction = predictor.predict(medseg.read("test.tif"))                                     # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

#: Public name -> the module that defines it (imported on first use).
_EXPORTS = {
    "BlendMode": "medseg.infer.tiling",
    "Prediction": "medseg.infer.predictor",
    "Predictor": "medseg.infer.predictor",
    "SlidingWindow": "medseg.infer.sliding_window",
    "ZScore": "medseg.infer.normalize",
    "label_instances": "medseg.infer.postprocess",
    "load_trained_model": "medseg.infer.predictor",
    "predict_blockwise": "medseg.infer.blockwise",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
