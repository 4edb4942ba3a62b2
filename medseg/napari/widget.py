"""napari widget: predict the current image layer with a medseg run folder or a bioimage.io package.

``predict_image_layer`` is contributed with ``autogenerate: true``: napari builds its form
(an image layer, a model path, options) with magicgui. The work is done by
:func:`predict_array`, which knows nothing of napari, so it is tested without it.
Progress goes through napari's progress bar when napari is there (windows of the sliding
window, as the CLI's ``--progress`` does).
"""

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from medseg.checkpoint_meta import Checkpoint, read_checkpoint
from medseg.errors import ShapeError
from medseg.exchange.bioimageio_import import is_bioimageio_package
from medseg.infer.sliding_window import SlidingWindow
from medseg.io import Volume
from medseg.napari.reader import layer_geometry
from medseg.pipeline.predicting import predictor_for
from medseg.pipeline.windows import package_infer_config, sliding_window_from_infer, window_for_checkpoint

if TYPE_CHECKING:  # the widget's annotations name napari's types; napari itself is optional
    import napari

__all__ = ["predict_array", "predict_image_layer"]

logger = logging.getLogger(__name__)


def _model_and_window(
    model: Path, device: str | None, progress: bool
) -> tuple[Path | Checkpoint, SlidingWindow]:
    """A package path, or the checkpoint loaded once, with the window it predicts with (the run's settings)."""
    chosen = {"device": device} if device else {}
    if is_bioimageio_package(model):
        return model, sliding_window_from_infer(package_infer_config(model, chosen), progress=progress)
    checkpoint = read_checkpoint(model)
    return checkpoint, window_for_checkpoint(
        checkpoint, chosen, source="medseg napari widget", progress=progress
    )


def predict_array(
    data: np.ndarray,
    model: str | Path,
    *,
    scale: Sequence[float] | None = None,
    translate: Sequence[float] | None = None,
    rgb: bool = False,
    device: str | None = None,
    progress: bool = False,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Labels (instances for instance models) of a napari image layer's data.

    Parameters
    ----------
    data : np.ndarray
        ``(Y, X)``, ``(Z, Y, X)`` or, with ``rgb``, ``(Y, X, 3)``.
    model : path
        A run folder, checkpoint or bioimage.io package.
    scale, translate : sequence of float, optional
        The layer's voxel size and position (kept on the result).
    device : str, optional
        ``cpu``, ``cuda`` ...; default the run's.
    progress : bool
        Show the sliding window's progress bar.

    Returns
    -------
    labels : np.ndarray
        Same spatial shape as ``data``.
    kwargs : dict
        Labels-layer arguments (name, scale, translate, metadata with the class names).
    """
    array = np.asarray(data)
    if rgb:
        array = np.moveaxis(array, -1, 0)
    else:
        array = array[None]
    if array.ndim not in (3, 4):
        raise ShapeError(f"the image layer has shape {np.shape(data)}; predict a 2D or 3D single image")
    model = Path(model)
    spatial = array.ndim - 1
    volume = Volume(
        array,
        spacing=tuple(scale)[-spatial:] if scale is not None else None,
        origin=tuple(translate)[-spatial:] if translate is not None else None,
    )
    loaded, window = _model_and_window(model, device, progress)
    predictor = predictor_for(loaded, window)
    prediction = predictor.predict(volume)
    result = prediction.instances if prediction.instances is not None else prediction.labels
    kwargs = {
        "name": f"{model.stem} labels",
        **layer_geometry(volume),
        "metadata": {"model": str(model), "classes": list(predictor.classes or [])},
    }
    return result.array[0], kwargs


def predict_image_layer(
    image: "napari.layers.Image",  # resolved by magicgui; napari is imported only by napari
    model: Path = Path("."),
    device: str = "",
) -> "napari.types.LayerDataTuple":
    """Predict ``image`` with a medseg run folder or a bioimage.io package into a labels layer.

    No ``from __future__ import annotations`` in this module: magicgui builds the form
    from these annotations and must resolve ``Path`` itself.
    """
    from napari.utils import progress

    with progress(total=0, desc=f"medseg: predicting {image.name}"):
        labels, kwargs = predict_array(
            image.data,
            model,
            scale=image.scale,
            translate=image.translate,
            rgb=bool(getattr(image, "rgb", False)),
            device=device or None,
            progress=True,
        )
    return (labels, kwargs, "labels")
