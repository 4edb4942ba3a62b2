"""StarDist trained from scratch with its standard recipe, for ``bench_nuclei.py`` (run by a venv's python).

Arguments: TRAIN_FOLDER TEST_FOLDER OUT_TIF CPU_SECONDS. The training folder's one image
(``images/`` + ``labels/``) is normalised to its 1st-99.8th percentiles (``csbdeep``'s
``normalize``), the last 20 % of its longest axis validates (as medseg holds it out), and StarDist
trains one short epoch at a time until it has used CPU_SECONDS of process CPU time; the
probability and NMS thresholds are then optimised on the validation rows
(``optimize_thresholds``) and the test image is predicted. 2D: 32 rays, grid 2x2, 128²
patches; 3D: 96 rays on a golden spiral stretched by the objects' anisotropy (their median
extents per axis), grid 1 along an axis over 1.5 times coarser and 2 elsewhere, 16x48x48
patches (the StarDist example notebooks' recipes at a CPU-sized patch), each patch size cut
to the smaller of the two parts.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import tifffile
from csbdeep.utils import normalize
from stardist import fill_label_holes


def main() -> None:
    train, test, out, budget = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])
    [path] = sorted((train / "images").iterdir())
    image = normalize(tifffile.imread(path).astype(np.float32), 1, 99.8)
    label = fill_label_holes(tifffile.imread(train / "labels" / path.name))
    axis = int(np.argmax(image.shape))
    cut = int(image.shape[axis] * 0.8)
    head = tuple(slice(0, cut) if a == axis else slice(None) for a in range(image.ndim))
    tail = tuple(slice(cut, None) if a == axis else slice(None) for a in range(image.ndim))
    x, y, xv, yv = [image[head]], [label[head]], [image[tail]], [label[tail]]
    if image.ndim == 2:
        from stardist.models import Config2D, StarDist2D

        smaller = np.minimum(image[head].shape, image[tail].shape)
        patch = tuple(int(min(128, s)) // 16 * 16 for s in smaller)
        config = Config2D(
            n_rays=32,
            grid=(2, 2),
            n_channel_in=1,
            train_patch_size=patch,
            train_batch_size=4,
            train_tensorboard=False,
        )
        model = StarDist2D(config, name="scratch", basedir=str(out.parent / "stardist_model"))
    else:
        from stardist import Rays_GoldenSpiral, calculate_extents
        from stardist.models import Config3D, StarDist3D

        # the StarDist 3D example notebook: rays and grid follow the objects' anisotropy
        extents = calculate_extents([label[head]])
        anisotropy = tuple(float(v) for v in np.max(extents) / extents)
        grid = tuple(1 if a > 1.5 else 2 for a in anisotropy)
        smaller = np.minimum(image[head].shape, image[tail].shape)
        patch = tuple(int(min(p, s)) // 8 * 8 for p, s in zip((16, 48, 48), smaller, strict=True))
        config = Config3D(
            rays=Rays_GoldenSpiral(96, anisotropy=anisotropy),
            grid=grid,
            anisotropy=anisotropy,
            n_channel_in=1,
            train_patch_size=patch,
            train_batch_size=2,
            train_tensorboard=False,
        )
        model = StarDist3D(config, name="scratch", basedir=str(out.parent / "stardist_model"))
    start = time.process_time()
    while time.process_time() - start < budget:
        model.train(x, y, validation_data=(xv, yv), epochs=1, steps_per_epoch=10)
    model.optimize_thresholds(xv, yv)
    [test_path] = sorted((test / "images").iterdir())
    labels, _ = model.predict_instances(normalize(tifffile.imread(test_path).astype(np.float32), 1, 99.8))
    tifffile.imwrite(out, labels.astype(np.uint16))


if __name__ == "__main__":
    main()
