from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from medseg.errors import ConfigError, ShapeError
from medseg.infer.blockwise import iter_blocks, predict_blockwise
from medseg.infer.normalize import ZScore
from medseg.infer.predictor import Predictor
from medseg.infer.sliding_window import SlidingWindow
from medseg.io import Volume, open_array, read, write


class Threshold(nn.Module):
    """Pointwise 2-class 'model': logit of class 1 rises with intensity. Tiling-independent."""

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return torch.cat([-x, x], dim=1)


def _stack(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.normal(size=(1, 7, 40, 45)).astype(np.float32)
    volume = Volume(image, spacing=(40.0, 4.0, 4.0), origin=(1.0, 2.0, 3.0))
    return write(volume, tmp_path / "raw.zarr"), image


def _predictor(model):
    return Predictor(model, SlidingWindow((16, 16), overlap=0.25, device="cpu"), ZScore((0.0,), (1.0,)))


def test_blocks_tile_the_array_exactly():
    blocks = iter_blocks((7, 40, 45), (3, 16, 16))
    covered = np.zeros((7, 40, 45), dtype=int)
    for block in blocks:
        covered[block] += 1
    assert np.all(covered == 1)
    assert len(blocks) == 3 * 3 * 3


def test_blockwise_equals_whole_image_prediction_and_keeps_geometry(tmp_path):
    path, image = _stack(tmp_path)
    with open_array(path) as lazy:
        out = predict_blockwise(
            _predictor(Threshold()), lazy, tmp_path / "labels.zarr", block_shape=(3, 16, 16), halo=(0, 4, 4)
        )
    labels = read(out)
    assert labels.array.shape == (1, 7, 40, 45) and labels.array.dtype == np.uint8
    np.testing.assert_array_equal(labels.array[0], (image[0] > 0).astype(np.uint8))
    assert labels.spacing == (40.0, 4.0, 4.0) and labels.origin == (1.0, 2.0, 3.0)
    assert not (tmp_path / "labels.zarr.incomplete").exists()


def test_blockwise_job_plans_the_windows_its_blocks_run(tmp_path, monkeypatch):
    # the automatic compile decision weighs the whole job: the plan is what the blocks run
    path, _ = _stack(tmp_path)

    class Counting(Threshold):
        windows = 0

        def forward(self, x):
            self.windows += x.shape[0]
            return super().forward(x)

    plans = []
    planned = SlidingWindow.planned

    def record(self, model, windows):
        plans.append(windows)
        return planned(self, model, windows)

    monkeypatch.setattr(SlidingWindow, "planned", record)
    model = Counting()
    with open_array(path) as lazy:
        predict_blockwise(
            _predictor(model), lazy, tmp_path / "labels.zarr", block_shape=(3, 16, 16), halo=(0, 4, 4)
        )
    assert plans == [model.windows] and model.windows > 7 * 4 * 4  # blocks share windows at their borders


def test_interrupted_run_resumes_with_the_missing_blocks(tmp_path):
    path, image = _stack(tmp_path)

    class Crash(Threshold):
        def forward(self, x):
            if self.calls >= 5:
                raise RuntimeError("simulated crash")
            return super().forward(x)

    with open_array(path) as lazy, pytest.raises(RuntimeError, match="simulated crash"):
        predict_blockwise(
            _predictor(Crash()), lazy, tmp_path / "labels.zarr", block_shape=(3, 16, 16), halo=(0, 4, 4)
        )
    assert not (tmp_path / "labels.zarr").exists()  # nothing half-written at the destination
    assert (tmp_path / "labels.zarr.incomplete").exists()

    model = Threshold()
    with open_array(path) as lazy:
        out = predict_blockwise(
            _predictor(model), lazy, tmp_path / "labels.zarr", block_shape=(3, 16, 16), halo=(0, 4, 4)
        )
    np.testing.assert_array_equal(read(out).array[0], (image[0] > 0).astype(np.uint8))
    fresh = Threshold()
    with open_array(path) as lazy:
        predict_blockwise(
            _predictor(fresh), lazy, tmp_path / "again.zarr", block_shape=(3, 16, 16), halo=(0, 4, 4)
        )
    assert 0 < model.calls < fresh.calls  # the resumed run skipped the finished blocks


def test_block_arguments_must_match_the_image():
    with pytest.raises(ShapeError, match="one value per spatial axis"):
        predict_blockwise(
            _predictor(Threshold()), np.zeros((1, 4, 8, 8)), "x.zarr", block_shape=(4, 4), halo=(0, 0)
        )


def _interrupt(path, tmp_path, block_shape):
    class Crash(Threshold):
        def forward(self, x):
            if self.calls >= 3:
                raise RuntimeError("simulated crash")
            return super().forward(x)

    with open_array(path) as lazy, pytest.raises(RuntimeError, match="simulated crash"):
        predict_blockwise(
            _predictor(Crash()), lazy, tmp_path / "labels.zarr", block_shape=block_shape, halo=(0, 4, 4)
        )


def test_resume_with_other_settings_is_refused_or_restarted(tmp_path):
    path, image = _stack(tmp_path)
    _interrupt(path, tmp_path, (2, 16, 16))
    # another block shape would leave holes: the done blocks are indices of the old grid
    with (
        open_array(path) as lazy,
        pytest.raises(
            ConfigError, match=r"block_shape: interrupted run \[2, 16, 16\], now \[4, 8, 8\].*overwrite"
        ),
    ):
        predict_blockwise(
            _predictor(Threshold()), lazy, tmp_path / "labels.zarr", block_shape=(4, 8, 8), halo=(0, 4, 4)
        )
    with (
        open_array(path) as lazy,
        pytest.raises(ConfigError, match=r"halo: interrupted run \[0, 4, 4\], now \[0, 2, 2\]"),
    ):
        predict_blockwise(
            _predictor(Threshold()), lazy, tmp_path / "labels.zarr", block_shape=(2, 16, 16), halo=(0, 2, 2)
        )
    other_model = Predictor(
        Threshold(),
        SlidingWindow((16, 16), overlap=0.25, device="cpu"),
        ZScore((0.0,), (1.0,)),
        identity={"checkpoint_sha256": "abc"},
    )
    with (
        open_array(path) as lazy,
        pytest.raises(ConfigError, match="checkpoint_sha256: interrupted run None, now 'abc'"),
    ):
        predict_blockwise(
            other_model, lazy, tmp_path / "labels.zarr", block_shape=(2, 16, 16), halo=(0, 4, 4)
        )
    with open_array(path) as lazy:
        out = predict_blockwise(
            _predictor(Threshold()),
            lazy,
            tmp_path / "labels.zarr",
            block_shape=(4, 8, 8),
            halo=(0, 4, 4),
            overwrite=True,
        )
    np.testing.assert_array_equal(read(out).array[0], (image[0] > 0).astype(np.uint8))
    import zarr

    job = zarr.open_array(str(out), mode="r").attrs["medseg_job"]
    assert job["block_shape"] == [4, 8, 8] and job["halo"] == [0, 4, 4] and job["output"] == "labels"


def test_label_dtype_follows_the_class_count(tmp_path):
    class Many(nn.Module):
        constraints = SimpleNamespace(out_channels=300)

        def forward(self, x):
            # class 299 where the input is positive, else class 0
            return torch.cat([-x, torch.zeros(x.shape[0], 298, *x.shape[2:]), x], dim=1)

    path, image = _stack(tmp_path)
    predictor = Predictor(Many(), SlidingWindow((16, 16), device="cpu"), ZScore((0.0,), (1.0,)))
    with open_array(path) as lazy:
        out = predict_blockwise(
            predictor, lazy, tmp_path / "many.zarr", block_shape=(7, 20, 45), halo=(0, 4, 4)
        )
    labels = read(out).array[0]
    assert labels.dtype == np.uint16
    np.testing.assert_array_equal(labels, np.where(image[0] > 0, 299, 0))


def _blobs(shape, centres, radius):
    grid = np.indices(shape)
    truth = np.zeros(shape, dtype=np.uint32)
    for i, c in enumerate(centres, start=1):
        inside = sum((g - x) ** 2 for g, x in zip(grid, c, strict=True)) <= radius**2
        truth[inside] = i
    return truth


class BoundaryLogits(nn.Module):
    """Channels of the input are the logits (background, inside, boundary): tiling-independent."""

    def forward(self, x):
        return x


def test_instances_are_continuous_across_block_borders(tmp_path):
    from scipy import ndimage

    from medseg.infer.postprocess import instances_from_boundary

    shape = (20, 40, 40)
    # balls centred on block borders (blocks of 10x20x20) and one inside a block
    truth = _blobs(shape, [(10, 20, 20), (5, 10, 20), (15, 30, 30), (4, 4, 4)], 4)
    inside = ndimage.binary_erosion(truth > 0) & (truth > 0)
    boundary = (truth > 0) & ~inside
    logits = np.stack([(truth == 0), inside, boundary]).astype(np.float32) * 8.0
    volume = Volume(logits)
    path = write(volume, tmp_path / "logits.zarr")
    predictor = Predictor(
        BoundaryLogits(),
        SlidingWindow((8, 16, 16), device="cpu"),
        ZScore((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
        targets={"label_kind": "instances", "instance_target": "boundary"},
    )
    whole = instances_from_boundary(torch.softmax(torch.from_numpy(logits), 0).numpy())
    with open_array(path) as lazy:
        out = predict_blockwise(
            predictor, lazy, tmp_path / "inst.zarr", block_shape=(10, 20, 20), halo=(3, 3, 3)
        )
    blocks = read(out).array[0]
    assert blocks.dtype == np.uint32
    # one id per object, numbered 1..N, the same partition as the whole-volume watershed
    assert sorted(np.unique(blocks)) == [0, 1, 2, 3, 4]
    pairs = set(zip(blocks.ravel().tolist(), whole.ravel().tolist(), strict=True))
    assert len(pairs) == 5 and len({a for a, _ in pairs}) == 5 and len({b for _, b in pairs}) == 5
    for i in range(1, 5):  # every ground-truth ball is one predicted object
        assert len(np.unique(blocks[truth == i])) == 1


def _check_ngff_05_label_image(group, ndim):
    """The NGFF 0.5 rules for a one-level label image (https://ngff.openmicroscopy.org/0.5/)."""
    ome = group.attrs["ome"]
    assert ome["version"] == "0.5" and "image-label" in ome
    (multiscale,) = ome["multiscales"]
    axes = multiscale["axes"]
    assert [a["name"] for a in axes] == list("zyx"[-ndim:]) and all(a["type"] == "space" for a in axes)
    (dataset,) = multiscale["datasets"]
    scale, translation = dataset["coordinateTransformations"]
    assert scale["type"] == "scale" and translation["type"] == "translation"
    assert len(scale["scale"]) == len(translation["translation"]) == ndim
    array = group[dataset["path"]]
    assert array.ndim == ndim and list(array.metadata.dimension_names) == [a["name"] for a in axes]
    return axes, scale["scale"], translation["translation"], array


def test_ome_zarr_output_is_an_ngff_label_image_with_geometry_and_resumes(tmp_path):
    import zarr

    rng = np.random.default_rng(1)
    image = rng.normal(size=(1, 7, 40, 45)).astype(np.float32)
    path = write(
        Volume(image, spacing=(40.0, 4.0, 4.0), origin=(1.0, 2.0, 3.0), unit="nm"), tmp_path / "raw.zarr"
    )
    expected = (image[0] > 0).astype(np.uint8)

    class Crash(Threshold):
        def forward(self, x):
            if self.calls >= 5:
                raise RuntimeError("simulated crash")
            return super().forward(x)

    target = tmp_path / "labels.ome.zarr"
    with open_array(path) as lazy, pytest.raises(RuntimeError, match="simulated crash"):
        predict_blockwise(_predictor(Crash()), lazy, target, block_shape=(3, 16, 16), halo=(0, 4, 4))
    assert not target.exists() and (tmp_path / "labels.ome.zarr.incomplete").exists()
    with open_array(path) as lazy, pytest.raises(ConfigError, match="block_shape"):
        predict_blockwise(_predictor(Threshold()), lazy, target, block_shape=(2, 16, 16), halo=(0, 4, 4))
    model = Threshold()
    with open_array(path) as lazy:
        out = predict_blockwise(_predictor(model), lazy, target, block_shape=(3, 16, 16), halo=(0, 4, 4))
    axes, scale, translation, array = _check_ngff_05_label_image(zarr.open_group(str(out), mode="r"), 3)
    assert [a["unit"] for a in axes] == ["nanometer"] * 3
    assert scale == [40.0, 4.0, 4.0] and translation == [1.0, 2.0, 3.0]
    np.testing.assert_array_equal(array[...], expected)
    assert array.attrs["medseg_job"]["block_shape"] == [3, 16, 16]
    fresh = Threshold()
    with open_array(path) as lazy:
        again = predict_blockwise(
            _predictor(fresh), lazy, tmp_path / "again.ome.zarr", block_shape=(3, 16, 16), halo=(0, 4, 4)
        )
    np.testing.assert_array_equal(zarr.open_array(str(again / "0"), mode="r")[...], array[...])
    assert 0 < model.calls < fresh.calls


@pytest.mark.parametrize(("block_shape", "halo"), [((16, 16), (24, 24)), ((24, 20), (32, 32))])
def test_valid_convolution_blocks_equal_in_memory_prediction(tmp_path, block_shape, halo):
    """Paper U-Net (valid convolutions): blocks aligned to the pooling factor with a halo of
    at least the network's margin give the in-memory labels exactly, and the same logits."""
    from medseg.models import build_model

    torch.manual_seed(0)
    model = build_model("unet-paper", features=2, depth=2, out_channels=3).eval()
    roi = model.constraints.required_input_shape((20, 20))
    predictor = Predictor(model, SlidingWindow(roi, overlap=0.25, device="cpu"), ZScore((0.0,), (1.0,)))
    image = np.random.default_rng(0).random((1, 70, 53), dtype=np.float32)
    path = write(Volume(image), tmp_path / "raw.zarr")
    with open_array(path) as lazy:
        out = predict_blockwise(predictor, lazy, tmp_path / "labels.zarr", block_shape=block_shape, halo=halo)
    np.testing.assert_array_equal(read(out).array[0], predictor.predict_label_array(image))
    full = predictor.predict_logits(image)
    for block in iter_blocks(image.shape[1:], block_shape):
        outer = tuple(slice(max(0, s.start - h), s.stop + h) for s, h in zip(block, halo, strict=True))
        inner = tuple(slice(s.start - o.start, s.stop - o.start) for s, o in zip(block, outer, strict=True))
        logits = predictor.predict_logits(image[(slice(None), *outer)])
        torch.testing.assert_close(
            logits[(slice(None), *inner)], full[(slice(None), *block)], rtol=1e-4, atol=1e-5
        )


@pytest.mark.parametrize(
    ("name", "params", "roi", "shape", "block_shape"),
    [
        # same convolutions, 3D windows: block-local window grids used to differ on 0.4-4.9 % of labels
        ("unet", {"spatial_dims": 3, "features": 4, "depth": 2}, (16, 24, 24), (30, 41, 37), (8, 16, 15)),
        # a 2D model on a 3D stack: sections are the batch, blocks cut them in Y and X
        ("unet", {"features": 4, "depth": 2}, (24, 24), (5, 50, 61), (2, 17, 23)),
        # valid convolutions, blocks not aligned to the pooling factor
        ("unet-paper", {"features": 2, "depth": 2}, None, (70, 53), (17, 21)),
    ],
)
def test_blocks_of_any_shape_equal_in_memory_labels(tmp_path, name, params, roi, shape, block_shape):
    from medseg.models import build_model

    torch.manual_seed(0)
    model = build_model(name, out_channels=3, **params).eval()
    roi = roi or model.constraints.required_input_shape((20, 20))
    window = SlidingWindow(roi, overlap=0.5, device="cpu", mirror_axes=(0,))
    predictor = Predictor(model, window, ZScore((0.5,), (2.0,)))
    image = np.random.default_rng(0).random((1, *shape), dtype=np.float32)
    path = write(Volume(image), tmp_path / "raw.zarr")
    with open_array(path) as lazy:
        out = predict_blockwise(
            predictor, lazy, tmp_path / "labels.zarr", block_shape=block_shape, halo=[0] * len(shape)
        )
    np.testing.assert_array_equal(read(out).array[0], predictor.predict_label_array(image))


def _instance_job(tmp_path):
    """Logits of seven balls cut by the borders of 10x20x20 blocks, and an instance predictor."""
    from scipy import ndimage

    shape = (20, 40, 40)
    centres = [(10, 20, 20), (5, 10, 20), (15, 30, 30), (4, 4, 4), (15, 8, 30), (5, 30, 8), (16, 20, 5)]
    truth = _blobs(shape, centres, 4)
    inside = ndimage.binary_erosion(truth > 0) & (truth > 0)
    boundary = (truth > 0) & ~inside
    logits = np.stack([(truth == 0), inside, boundary]).astype(np.float32) * 8.0
    path = write(Volume(logits), tmp_path / "logits.zarr")
    predictor = Predictor(
        BoundaryLogits(),
        SlidingWindow((8, 16, 16), device="cpu"),
        ZScore((0.0, 0.0, 0.0), (1.0, 1.0, 1.0)),
        targets={"label_kind": "instances", "instance_target": "boundary"},
    )
    return path, predictor


@pytest.mark.parametrize("failing_write", range(1, 9))
def test_instance_job_killed_while_renumbering_resumes_to_the_same_ids(tmp_path, monkeypatch, failing_write):
    """Fault injection: the run dies right after the n-th block of the renumbering pass is
    written (before it is recorded); the resumed run must not renumber that block again."""
    import zarr

    path, predictor = _instance_job(tmp_path)
    with open_array(path) as lazy:
        clean = predict_blockwise(
            predictor, lazy, tmp_path / "clean.zarr", block_shape=(10, 20, 20), halo=(3, 3, 3)
        )
    expected = read(clean).array
    blocks = len(iter_blocks((20, 40, 40), (10, 20, 20)))
    writes = []
    original = zarr.Array.__setitem__

    def crash_after(self, key, value):
        original(self, key, value)
        writes.append(key)
        if len(writes) == blocks + failing_write:
            raise KeyboardInterrupt("killed while renumbering")

    monkeypatch.setattr(zarr.Array, "__setitem__", crash_after)
    target = tmp_path / "inst.zarr"
    with open_array(path) as lazy, pytest.raises(KeyboardInterrupt, match="renumbering"):
        predict_blockwise(predictor, lazy, target, block_shape=(10, 20, 20), halo=(3, 3, 3))
    monkeypatch.setattr(zarr.Array, "__setitem__", original)
    with open_array(path) as lazy:
        out = predict_blockwise(predictor, lazy, target, block_shape=(10, 20, 20), halo=(3, 3, 3))
    got = read(out).array
    assert sorted(np.unique(got)) == list(range(8))  # seven objects, one id each
    np.testing.assert_array_equal(got, expected)
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("medseg")) == []


def test_resume_after_the_input_changed_is_refused(tmp_path):
    path, image = _stack(tmp_path)
    _interrupt(path, tmp_path, (2, 16, 16))
    changed = image.copy()
    changed[0, 5] *= -1  # same shape and dtype, new content in the last slices
    write(Volume(changed, spacing=(40.0, 4.0, 4.0), origin=(1.0, 2.0, 3.0)), path)
    with (
        open_array(path) as lazy,
        pytest.raises(
            ConfigError, match=r"the input .*raw\.zarr changed since the interrupted run.*overwrite"
        ),
    ):
        predict_blockwise(
            _predictor(Threshold()), lazy, tmp_path / "labels.zarr", block_shape=(2, 16, 16), halo=(0, 4, 4)
        )
    with open_array(path) as lazy:
        out = predict_blockwise(
            _predictor(Threshold()),
            lazy,
            tmp_path / "labels.zarr",
            block_shape=(2, 16, 16),
            halo=(0, 4, 4),
            overwrite=True,
        )
    np.testing.assert_array_equal(read(out).array[0], (changed[0] > 0).astype(np.uint8))


class TwoClasses(Threshold):
    constraints = SimpleNamespace(out_channels=2)


def test_blockwise_probabilities_equal_in_memory_ones_and_resume(tmp_path):
    path, _ = _stack(tmp_path)
    predictor = _predictor(TwoClasses())
    expected = predictor.predict(read(path), probabilities=True).probabilities.array

    class Crash(TwoClasses):
        def forward(self, x):
            if self.calls >= 5:
                raise RuntimeError("simulated crash")
            return super().forward(x)

    kwargs = {"block_shape": (3, 16, 16), "halo": (0, 4, 4), "probabilities": tmp_path / "probs.zarr"}
    with open_array(path) as lazy, pytest.raises(RuntimeError, match="simulated crash"):
        predict_blockwise(_predictor(Crash()), lazy, tmp_path / "labels.zarr", **kwargs)
    assert not (tmp_path / "probs.zarr").exists()
    with open_array(path) as lazy:
        out = predict_blockwise(predictor, lazy, tmp_path / "labels.zarr", **kwargs)
    probs = read(tmp_path / "probs.zarr")
    assert probs.array.shape == (2, 7, 40, 45) and probs.array.dtype == np.float32
    np.testing.assert_allclose(probs.array, expected, atol=1e-6)
    assert probs.spacing == (40.0, 4.0, 4.0) and probs.origin == (1.0, 2.0, 3.0)
    np.testing.assert_array_equal(read(out).array[0], probs.array.argmax(0))


def test_blockwise_probabilities_of_an_instance_model(tmp_path):
    path, predictor = _instance_job(tmp_path)
    predictor.model.constraints = SimpleNamespace(out_channels=3)
    with open_array(path) as lazy:
        predict_blockwise(
            predictor,
            lazy,
            tmp_path / "inst.zarr",
            block_shape=(10, 20, 20),
            halo=(3, 3, 3),
            probabilities=tmp_path / "probs.zarr",
        )
    logits = read(path).array
    expected = torch.softmax(torch.from_numpy(logits), 0).numpy()
    np.testing.assert_allclose(read(tmp_path / "probs.zarr").array, expected, atol=1e-6)
