"""Cellpose 3 trained from scratch with its standard recipe, for ``bench_nuclei.py`` (run by a python with cellpose).

Arguments: TRAIN_FOLDER TEST_FOLDER OUT_TIF CPU_SECONDS, as ``_stardist_from_scratch.py``.

Why Cellpose 3 (``cellpose==3.1.1.2``, the ``CPnet`` residual U-Net, 6.6 M parameters) and
not Cellpose 4: Cellpose 4's only model, ``cpsam``, is a ViT-L SAM encoder (300 M
parameters) meant to be fine-tuned from its pretrained weights on a GPU; trained from
scratch on a CPU for minutes it learns nothing, so it would not be an anchor. Cellpose 3
is the version whose papers and CLI train new models from scratch (``python -m cellpose
--train --pretrained_model None``).

The recipe is that CLI's for a new model: ``CellposeModel(pretrained_model=False,
model_type=None, nchan=2, diam_mean=30)`` (no weights loaded), grey images as ``channels
[0, 0]``, ``train.train_seg`` with SGD, learning rate 0.2, weight decay 1e-5, batch size 8,
Cellpose's own augmentation (random rotation, flips, rescaling every image so its objects
are 30 px across, 224² crops) and its learning-rate schedule (a 10-epoch warm-up, halvings
at the end), which depends on ``n_epochs``, so training is one call, never resumed in
chunks. The training image's last 20 % along its longest axis validates (as medseg and
StarDist hold it out); the rest is the training image, and each epoch draws 8 random crops
of it (``nimg_per_epoch=8``: a Cellpose epoch is one pass over the images, and a lab has
one). Fitting the CPU budget: the flows are computed once, a fresh model trains 2 epochs
to time one, and a second fresh model trains as many epochs as the rest of CPU_SECONDS
(process CPU time, all threads) allows. Prediction: ``model.eval(channels=[0, 0],
diameter=<the training objects' mean diameter>, flow_threshold=0.4,
cellprob_threshold=0.0)`` with the model loaded from its saved weights, as a user runs
it.

3D: Cellpose trains on 2D slices and segments a stack with its 2D model run along the
three axes (``do_3D=True``, flows averaged, then followed in 3D). Training uses the
labelled XY slices of the training stack and, as the stack is isotropic, its XZ and YZ
slices too; ``anisotropy`` is the Z spacing over the XY spacing of the ImageJ TIFF
metadata (1 without it), and with an anisotropic stack only the XY slices train. Labels are
written as a uint16 TIFF.

Cellpose brings its own torch; to reuse an existing CPU torch, install it beside it with
``pip install --no-deps --target SITE cellpose==3.1.1.2 opencv-python-headless natsort
roifile fill-voids`` and run this script as ``PYTHONPATH=SITE python`` (``bench_nuclei.py
--cellpose-python PYTHON --cellpose-pythonpath SITE``).
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

import numpy as np
import tifffile

#: Cellpose CLI defaults for training a new model.
RECIPE = {"learning_rate": 0.2, "weight_decay": 1e-5, "SGD": True, "batch_size": 8}
CROPS_PER_EPOCH = 8
PROBE_EPOCHS = 2


def _z_anisotropy(path: Path) -> float:
    """Z spacing over XY spacing from ImageJ TIFF metadata; 1 when the file does not say."""
    with tifffile.TiffFile(path) as tif:
        spacing = (tif.imagej_metadata or {}).get("spacing")
        x_resolution = tif.pages[0].tags.get("XResolution")
    if not spacing or x_resolution is None:
        return 1.0
    numerator, denominator = x_resolution.value
    return float(spacing) * numerator / denominator if numerator else 1.0


def _slices(image: np.ndarray, label: np.ndarray, orthogonal: bool) -> tuple[list, list]:
    """The 2D training pairs of an image: itself, or a stack's labelled XY (and XZ, YZ) slices."""
    if image.ndim == 2:
        return [image], [label]
    images, labels = [], []
    for axis in (0, 1, 2) if orthogonal else (0,):
        for k in range(image.shape[axis]):
            lab = np.take(label, k, axis=axis)
            if lab.max() > 0:
                images.append(np.take(image, k, axis=axis))
                labels.append(lab)
    return images, labels


def _train(models, train, flows, test, test_flows, n_epochs: int, save: Path) -> Path:
    """Train a new model (no weights loaded) for ``n_epochs``; the path of its saved weights."""
    from cellpose import train as cp_train

    model = models.CellposeModel(gpu=False, pretrained_model=False, model_type=None, nchan=2, diam_mean=30.0)
    path = cp_train.train_seg(
        model.net,
        train_data=train,
        train_labels=flows,
        test_data=test,
        test_labels=test_flows,
        channels=[0, 0],
        n_epochs=n_epochs,
        nimg_per_epoch=CROPS_PER_EPOCH,
        min_train_masks=1,
        save_path=str(save),
        model_name="scratch",
        **RECIPE,
    )[0]
    return Path(path)


def main() -> None:
    train_dir, test_dir, out, budget = (
        Path(sys.argv[1]),
        Path(sys.argv[2]),
        Path(sys.argv[3]),
        float(sys.argv[4]),
    )
    logging.basicConfig(level=logging.WARNING)
    import torch
    from cellpose import dynamics, models

    start = time.process_time()
    [path] = sorted((train_dir / "images").iterdir())
    image = tifffile.imread(path).astype(np.float32)
    label = tifffile.imread(train_dir / "labels" / path.name).astype(np.int32)
    anisotropy = _z_anisotropy(path) if image.ndim == 3 else 1.0
    axis = int(np.argmax(image.shape))
    cut = int(image.shape[axis] * 0.8)
    head = tuple(slice(0, cut) if a == axis else slice(None) for a in range(image.ndim))
    tail = tuple(slice(cut, None) if a == axis else slice(None) for a in range(image.ndim))
    orthogonal = abs(anisotropy - 1.0) < 0.1
    train, train_labels = _slices(image[head], label[head], orthogonal)
    test, test_labels = _slices(image[tail], label[tail], orthogonal)
    cpu = torch.device("cpu")
    flows = dynamics.labels_to_flows(train_labels, device=cpu)  # once: both models below reuse them
    test_flows = dynamics.labels_to_flows(test_labels, device=cpu) if test else None
    save = out.parent / "cellpose_model"
    save.mkdir(parents=True, exist_ok=True)

    probe = time.process_time()
    _train(models, train, flows, test or None, test_flows, PROBE_EPOCHS, save)
    per_epoch = (time.process_time() - probe) / PROBE_EPOCHS
    left = budget - (time.process_time() - start)
    n_epochs = max(1, int(left / per_epoch))
    logging.warning("cellpose: %.1f CPU s per epoch, training %d epochs", per_epoch, n_epochs)
    weights = _train(models, train, flows, test or None, test_flows, n_epochs, save)
    # as a user runs a trained model: from its file (which also sets what 3D prediction needs)
    model = models.CellposeModel(gpu=False, pretrained_model=str(weights))
    diameter = float(model.diam_labels)

    [test_path] = sorted((test_dir / "images").iterdir())
    target = tifffile.imread(test_path).astype(np.float32)
    settings = {"channels": [0, 0], "diameter": diameter, "flow_threshold": 0.4, "cellprob_threshold": 0.0}
    if target.ndim == 3:
        settings.update(do_3D=True, z_axis=0, anisotropy=anisotropy)
    masks = model.eval(target, **settings)[0]
    tifffile.imwrite(out, np.asarray(masks).astype(np.uint16))


if __name__ == "__main__":
    main()
