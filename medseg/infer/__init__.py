"""Sliding-window inference, predictors and post-processing.

Examples
--------
>>> from medseg.infer import Predictor, SlidingWindow
>>> predictor = Predictor.from_checkpoint("runs/isbi", SlidingWindow((256, 256), overlap=0.5))  # doctest: +SKIP
>>> prediction = predictor.predict(medseg.read("test.tif"))                                     # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any

from medseg._lazy import lazy_attribute, lazy_dir

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
    return lazy_attribute(__name__, _EXPORTS, name)


def __dir__() -> list[str]:
    return lazy_dir(__name__, _EXPORTS)
