"""medseg: biomedical image segmentation (EM stacks, histopathology, dental X-rays, any 2D/3D scan).

The top-level names are imported on first use, so ``import medseg`` is cheap (no torch):

- :func:`read`, :func:`write`, :class:`Volume`: images with their geometry (:mod:`medseg.io`);
- :func:`build_model`: a segmenter by registry name (:mod:`medseg.models`);
- :class:`SlidingWindow`, :class:`Predictor`: inference (:mod:`medseg.infer`);
- :func:`train`, :func:`predict`, :func:`evaluate`: what ``medseg train``/``predict``/``evaluate``
  run (:mod:`medseg.api`). ``medseg.train`` is also the training package: calling it trains
  from a pipeline config, ``medseg.train.Trainer`` is the loop.

Examples
--------
>>> import medseg
>>> volume = medseg.read("image.nii.gz")                                      # doctest: +SKIP
>>> run = medseg.train("pipelines/isbi2012.yaml", out="runs/isbi")            # doctest: +SKIP
>>> medseg.predict(run.checkpoint_dir, ["test.tif"], "runs/isbi/pred")        # doctest: +SKIP
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

#: Public name -> the module that defines it.
_EXPORTS = {
    "read": "medseg.io",
    "write": "medseg.io",
    "Volume": "medseg.io",
    "build_model": "medseg.models",
    "SlidingWindow": "medseg.infer",
    "Predictor": "medseg.infer",
    "predict": "medseg.api",
    "evaluate": "medseg.api",
}

#: Subpackages reachable as attributes without importing them first (``medseg.infer.Predictor``).
_SUBMODULES = {
    "api",
    "checkpoint_meta",
    "config",
    "data",
    "errors",
    "eval",
    "infer",
    "io",
    "models",
    "options",
    "resources",
    "train",
}

__all__ = [
    "Predictor",
    "SlidingWindow",
    "Volume",
    "build_model",
    "evaluate",
    "predict",
    "read",
    "train",
    "write",
]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBMODULES:  # `train` included: the package is callable (medseg.train(config, out=...))
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*__all__, *_SUBMODULES, "__version__"})
