from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference
from torch import nn

from medseg.errors import ConfigError, DataValueError, ShapeError
from medseg.infer import compile_policy
from medseg.infer.sliding_window import SlidingWindow, compile_pays_off
from medseg.infer.tiling import importance_map, window_starts


class Pointwise(nn.Module):
    """A model whose output at a pixel depends on that pixel only: tiling cannot change it."""

    def __init__(self, in_channels: int = 1, out_channels: int = 3, spatial_dims: int = 2) -> None:
        super().__init__()
        conv = nn.Conv2d if spatial_dims == 2 else nn.Conv3d
        self.net = nn.Sequential(conv(in_channels, 8, 1), nn.Tanh(), conv(8, out_channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ValidConv(nn.Module):
    """Two unpadded 3x3 convolutions: crops 2 px per side, like the paper U-Net."""

    constraints = SimpleNamespace(margin=2)

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Conv2d(4, 2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


@pytest.mark.parametrize("blending", ["gaussian", "constant"])
@pytest.mark.parametrize(
    ("shape", "roi", "overlap"),
    [
        ((1, 1, 50, 37), (16, 16), 0.5),
        ((2, 3, 8, 8), (16, 16), 0.25),  # smaller than the window: mirror-padded, cropped back
        ((1, 2, 9, 20, 13), (4, 8, 8), 0.5),
        ((3, 1, 5, 40, 3), (8, 8, 8), 0.0),  # three images batched across windows, padding on two axes
    ],
)
def test_identity_model_returns_the_input(shape, roi, overlap, blending):
    torch.manual_seed(0)
    image = torch.rand(shape)
    window = SlidingWindow(roi, overlap=overlap, blending=blending, batch_size=3)
    out = window(nn.Identity(), image)
    assert out.shape == image.shape
    # sum_i(w_i * x) / sum_i(w_i) is x up to float rounding of the sums (a few ulp; the
    # worst of 480 random trials was 5.5e-7 relative)
    torch.testing.assert_close(out, image, rtol=1e-6, atol=0)
    # labels only: the argmax of an identity model is the argmax of the input, exactly
    labels = window.predict_labels(nn.Identity(), image)
    assert labels.dtype == torch.uint8
    torch.testing.assert_close(labels, image.argmax(dim=1).to(torch.uint8), rtol=0, atol=0)


def _monai_unet(spatial_dims: int, out_channels: int = 3) -> nn.Module:
    from monai.networks.nets import BasicUNet

    torch.manual_seed(0)
    return BasicUNet(
        spatial_dims=spatial_dims, in_channels=1, out_channels=out_channels, features=(4, 4, 8, 8, 16, 4)
    ).eval()


@pytest.mark.parametrize(
    ("shape", "roi", "overlap"),
    [((2, 1, 96, 80), (32, 32), 0.5), ((1, 1, 48, 64, 48), (32, 32, 32), 0.5)],
)
def test_random_unet_matches_monai_on_the_same_window_grid(shape, roi, overlap):
    # the sizes make MONAI's grid (steps from 0, last window clamped) equal to the evenly
    # spread one; both get the same Gaussian map, so the blends must agree to float rounding
    model = _monai_unet(len(roi))
    image = torch.randn(shape)
    ours = SlidingWindow(roi, overlap=overlap, batch_size=3)(model, image)
    labels = SlidingWindow(roi, overlap=overlap, batch_size=3).predict_labels(model, image)
    weights = torch.from_numpy(importance_map(roi, "gaussian"))
    with torch.inference_mode():
        reference = sliding_window_inference(image, roi, 3, model, overlap=overlap, roi_weight_map=weights)
    torch.testing.assert_close(ours, reference, rtol=0, atol=1e-5)
    assert torch.equal(labels.long(), ours.argmax(dim=1))


def test_channels_last_does_not_change_the_output():
    model = _monai_unet(3)
    image = torch.randn(1, 1, 32, 48, 32)
    plain = SlidingWindow((32, 32, 32), channels_last=False)(model, image)
    torch.testing.assert_close(
        SlidingWindow((32, 32, 32), channels_last=True)(model, image), plain, rtol=0, atol=1e-5
    )


def test_a_repeated_automatic_compile_decision_is_said_once(caplog, monkeypatch):
    # block-wise prediction decides in every block: the same outcome again is a debug line
    caplog.set_level("INFO", logger="medseg.infer.compile_policy")
    monkeypatch.setattr(compile_policy, "_COMPILE_SECONDS", {2: 1e6})
    model, image = Pointwise(), torch.randn(1, 1, 64, 64)
    auto = SlidingWindow((16, 16), batch_size=2, compile=None)
    for _ in range(3):
        auto(model, image)
    decisions = [r.getMessage() for r in caplog.records if "compiling the model" in r.getMessage()]
    assert len(decisions) == 1 and decisions[0].startswith("not compiling the model: 45 windows left")


def test_a_planned_job_decides_compiling_from_the_windows_of_all_its_calls(monkeypatch):
    # three images of 7 x 7 windows: no single call repays compiling, the job of 147 might
    seen = []
    monkeypatch.setattr(
        compile_policy, "compile_pays_off", lambda windows, *a, **k: seen.append(windows) or False
    )
    model, image = Pointwise(), torch.randn(1, 1, 64, 64)
    auto = SlidingWindow((16, 16), batch_size=2, compile=None)
    assert auto.count_windows(model, (64, 64)) == 49
    assert auto.count_windows(model, (64, 64), (slice(0, 16), slice(0, 64))) == 2 * 7
    with auto.planned(model, 3 * 49):
        for _ in range(3):
            auto(model, image)
    # decided after the second batch of each call: 45 left in the call plus the later calls'
    assert seen == [45 + 98, 45 + 49, 45]
    auto(model, image)  # outside the plan: the call alone
    assert seen[-1] == 45


@pytest.mark.parametrize("batch_size", [5, 7])
def test_compiled_model_with_frozen_weights_matches_eager_with_a_partial_last_batch(batch_size):
    model = ValidConv()
    # 6 x 4 windows: the last batch of 5 holds 4 windows (padded to 5), of 7 holds 3 (run uncompiled)
    image = torch.randn(1, 1, 40, 29)
    eager = SlidingWindow((16, 16), batch_size=batch_size)(model, image)
    compiled = SlidingWindow((16, 16), batch_size=batch_size, compile=True)
    torch.testing.assert_close(compiled(model, image), eager, rtol=0, atol=1e-5)
    torch.testing.assert_close(
        compiled(model, image + 1), SlidingWindow((16, 16))(model, image + 1), rtol=0, atol=1e-5
    )


def test_compile_pays_off_when_the_time_it_saves_exceeds_the_compile_time():
    # 100 windows of 0.3 s: 30 s uncompiled, 20 s at 1.5x, so compiling saves 10 s
    assert compile_pays_off(100, 0.3, compile_seconds=9.9)
    assert not compile_pays_off(100, 0.3, compile_seconds=10.1)
    # twice as fast compiled saves half: 15 s
    assert compile_pays_off(100, 0.3, compile_seconds=14.9, speedup=2.0)
    assert not compile_pays_off(0, 0.3, compile_seconds=0.0)


def test_automatic_compile_decides_after_two_batches_and_then_reuses_the_compiled_model(caplog, monkeypatch):
    caplog.set_level("INFO", logger="medseg.infer.compile_policy")
    model = Pointwise()
    image = torch.randn(1, 1, 64, 64)  # 7 x 7 windows of 16^2, 25 batches of 2
    eager = SlidingWindow((16, 16), batch_size=2)(model, image)
    auto = SlidingWindow((16, 16), batch_size=2, compile=None)
    monkeypatch.setattr(compile_policy, "_COMPILE_SECONDS", {2: 1e6})
    torch.testing.assert_close(auto(model, image), eager, rtol=0, atol=0)  # never repaid: uncompiled
    monkeypatch.setattr(compile_policy, "_COMPILE_SECONDS", {2: 0.0})
    torch.testing.assert_close(auto(model, image), eager, rtol=0, atol=1e-5)  # compiled after 2 batches
    decisions = [r.getMessage() for r in caplog.records]
    assert [d.split(":")[0] for d in decisions] == ["not compiling the model", "compiling the model"]
    assert all(" 45 windows left " in d for d in decisions)
    # compiled already: used from the first batch, nothing to decide
    torch.testing.assert_close(
        auto(model, image + 1), SlidingWindow((16, 16))(model, image + 1), rtol=0, atol=1e-5
    )
    assert len(caplog.records) == 2
    # a job of two batches or fewer never compiles
    assert not SlidingWindow((16, 16), batch_size=32, compile=None)._compiling(nn.Conv2d(1, 1, 1), 64)


def test_bfloat16_autocast_agrees_with_float32_on_the_labels():
    model = _monai_unet(2)
    image = torch.randn(1, 1, 64, 64)
    full = SlidingWindow((32, 32))(model, image)
    half = SlidingWindow((32, 32), precision="bfloat16")(model, image)
    assert half.dtype == torch.float32  # accumulation stays float32
    assert (half - full).abs().max() < 0.1
    assert (half.argmax(1) == full.argmax(1)).float().mean() > 0.95


@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_matches_monai_sliding_window_inference(spatial_dims):
    torch.manual_seed(0)
    model = Pointwise(spatial_dims=spatial_dims).eval()
    shape = (1, 1, 40, 45) if spatial_dims == 2 else (1, 1, 12, 20, 17)
    roi = (16, 16) if spatial_dims == 2 else (8, 8, 8)
    image = torch.randn(shape)
    ours = SlidingWindow(roi, overlap=0.25, blending="gaussian")(model, image)
    with torch.no_grad():
        reference = sliding_window_inference(image, roi, 4, model, overlap=0.25, mode="gaussian")
        full = model(image)
    torch.testing.assert_close(ours, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(ours, full, rtol=1e-5, atol=1e-5)


def test_valid_convolution_model_uses_mirrored_overlap_tile():
    torch.manual_seed(0)
    model = ValidConv().eval()
    image = torch.randn(1, 1, 30, 41)
    out = SlidingWindow((14, 14), overlap=0.3)(model, image)
    with torch.no_grad():
        expected = model(F.pad(image, (2, 2, 2, 2), mode="reflect"))
    assert out.shape == (1, 2, 30, 41)
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)


def test_mirror_tta_averages_flipped_predictions():
    torch.manual_seed(0)
    model = nn.Conv2d(1, 2, 3, padding=1).eval()
    image = torch.randn(1, 1, 16, 16)
    out = SlidingWindow((16, 16), mirror_axes=(0, 1), blending="constant")(model, image)
    with torch.no_grad():
        flips = [(), (2,), (3,), (2, 3)]
        expected = sum(model(image.flip(d)).flip(d) if d else model(image) for d in flips) / 4
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-6)


def test_window_starts_cover_axis_evenly():
    assert window_starts(100, 40, 0.5) == [0, 20, 40, 60]
    assert window_starts(40, 40, 0.5) == [0]
    starts = window_starts(97, 32, 0.5)
    assert starts[0] == 0 and starts[-1] == 97 - 32
    assert max(np.diff(starts)) <= 16


def test_gaussian_importance_map_is_positive_and_peaks_in_centre():
    weights = importance_map((9, 9), "gaussian")
    assert weights.min() > 0
    assert weights[4, 4] == pytest.approx(1.0)
    assert weights[0, 0] < weights[2, 2] < weights[4, 4]


def test_bad_arguments_raise_specific_errors():
    with pytest.raises(ConfigError, match="overlap must be >= 0 and < 1, got 1.0"):
        SlidingWindow((8, 8), overlap=1.0)
    with pytest.raises(ConfigError, match="blending must be one of gaussian, constant"):
        SlidingWindow((8, 8), blending="median")
    with pytest.raises(ShapeError, match=r"\(N, C, \*spatial\) with 2 spatial axes"):
        SlidingWindow((8, 8))(nn.Identity(), torch.rand(8, 8))
    image = torch.rand(1, 1, 8, 8)
    image[0, 0, 3, 3] = float("nan")
    with pytest.raises(DataValueError, match="NaN"):
        SlidingWindow((8, 8))(nn.Identity(), image)
    with pytest.raises(ShapeError, match="does not match the expected"):
        SlidingWindow((8, 8))(nn.Conv2d(1, 1, 3), torch.rand(1, 1, 8, 8))


def test_roi_checked_against_model_constraints_before_predicting():
    from medseg.models import build_model

    model = build_model("unet", in_channels=1, out_channels=2, features=4, depth=2)
    with pytest.raises(
        ConfigError, match=r"roi_size \(30, 30\) is not a valid input size.*use roi_size \(32, 32\)"
    ):
        SlidingWindow((30, 30))(model, torch.rand(1, 1, 40, 40))


@pytest.mark.parametrize(
    ("shape", "out_window", "params"),
    [
        ((64, 64), (32, 32), {"features": 2, "depth": 4}),  # margin 92 > the image: repeated mirroring
        ((200, 200), (100, 100), {"features": 2, "depth": 4}),
        ((37, 29), (20, 20), {"features": 2, "depth": 2}),
        ((12, 30, 21), (8, 16, 16), {"features": 2, "depth": 2, "spatial_dims": 3}),
    ],
)
def test_paper_unet_overlap_tile_equals_one_mirrored_whole_image_pass(shape, out_window, params):
    from medseg.infer.tiling import aligned_size
    from medseg.models import build_model
    from medseg.models.constraints import mirror_pad

    torch.manual_seed(0)
    model = build_model("unet-paper", **params).eval()
    c = model.constraints
    roi = c.required_input_shape(out_window)
    out_window = c.output_shape(roi)
    image = torch.rand(1, 1, *shape)
    # window starts are aligned to the pooling factor, so with valid convolutions each
    # output pixel is independent of the window it came from: tiles join without seams
    window = SlidingWindow(roi, overlap=0.25, blending="gaussian")
    out = window(model, image)
    assert out.shape == (1, 2, *shape)
    grid = [aligned_size(s, o, d) for s, o, d in zip(shape, out_window, c.divisor, strict=True)]
    pad = [(m, m + g - s) for s, g, m in zip(shape, grid, c.margin, strict=True)]
    with torch.no_grad():  # one forward pass over the whole mirrored image
        full = model(mirror_pad(image, pad))[(..., *(slice(0, s) for s in shape))]
    torch.testing.assert_close(out, full, rtol=1e-4, atol=1e-5)
    labels = window.predict_labels(model, image)
    assert torch.equal(labels.long(), full.argmax(dim=1))


@pytest.mark.gpu
@pytest.mark.parametrize("channels_last", [False, True])
@pytest.mark.parametrize("spatial_dims", [2, 3])
def test_cuda_engine_matches_the_cpu_and_bf16_labels_agree(spatial_dims, channels_last):
    model = _monai_unet(spatial_dims)
    shape = (1, 1, 96, 80) if spatial_dims == 2 else (1, 1, 48, 64, 48)
    roi = (32,) * spatial_dims
    image = torch.randn(shape)
    cpu = SlidingWindow(roi, device="cpu")(model, image)
    gpu = SlidingWindow(roi, device="cuda", channels_last=channels_last)(model.cuda(), image.cuda())
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=0, atol=1e-4)
    window = SlidingWindow(roi, device="cuda", precision="bfloat16", channels_last=channels_last)
    labels = window.predict_labels(model, image.cuda())
    # a random network has many near-ties; a trained one agrees on >= 99.9 % (see medseg bench)
    assert (labels.long() == cpu.argmax(dim=1)).float().mean() >= 0.98


@pytest.mark.gpu
@pytest.mark.parametrize("labels_only", [False, True])
def test_cuda_refuses_a_non_finite_image_after_its_last_batch(labels_only):
    # on CUDA the check is gathered on the device and read once, so the host never waits per batch
    image = torch.rand(1, 1, 40, 40, device="cuda")
    image[0, 0, 37, 2] = float("inf")  # in the last batch only
    window = SlidingWindow((16, 16), batch_size=2, device="cuda")
    with pytest.raises(DataValueError, match="NaN or infinite"):
        window.predict_labels(nn.Identity(), image) if labels_only else window(nn.Identity(), image)


def test_regions_read_only_their_windows_and_equal_the_whole_image_labels():
    import itertools

    from medseg.models import build_model

    torch.manual_seed(0)
    model = build_model("unet", in_channels=1, out_channels=3, features=4, depth=2).eval()
    window = SlidingWindow((32, 32), overlap=0.5, batch_size=3, device="cpu")
    image = np.random.default_rng(3).standard_normal((2, 1, 130, 97)).astype(np.float32)
    whole = window.predict_labels(model, image)
    boxes = []

    def read(box):
        boxes.append(box)
        return image[(slice(None), slice(None), *box)]

    got = torch.empty_like(whole)
    for y, x in itertools.product(range(0, 130, 40), range(0, 97, 30)):
        region = (slice(y, min(y + 40, 130)), slice(x, min(x + 30, 97)))
        got[(slice(None), *region)] = window.predict_labels_region(model, read, (130, 97), region)
    torch.testing.assert_close(got, whole, rtol=0, atol=0)
    # each region reads its windows' extent, not the image: at most region + 2 windows per axis
    assert all(b.stop - b.start <= r + 2 * 32 for box in boxes for b, r in zip(box, (40, 30), strict=True))


@pytest.mark.parametrize("overlap", [0.5, 0.25])
def test_labels_only_holds_sums_for_about_one_window_overlap(monkeypatch, overlap):
    from medseg.infer.blending import LabelCells

    held = []
    add = LabelCells.add

    def spy(self, batch, logits):
        add(self, batch, logits)
        held.append(sum(t.numel() for t in self.sums.values()))

    monkeypatch.setattr(LabelCells, "add", spy)
    torch.manual_seed(0)
    model = Pointwise(out_channels=4, spatial_dims=3)
    image = torch.randn(2, 1, 48, 40, 24)
    window = SlidingWindow((8, 8, 8), overlap=overlap, batch_size=5)
    labels = window.predict_labels(model, image)
    assert torch.equal(labels.long(), window(model, image).argmax(dim=1))
    # at most one window depth of rows (the rows shared with the next window row plus the
    # band being finished), for 2 images x 4 classes: a sixth of the 48 rows' sums
    assert 0 < max(held) <= 2 * 4 * 8 * 40 * 24
    assert held[-1] == 0


def test_the_blending_weights_are_made_once_and_never_written():
    from medseg.infer import blending
    from medseg.infer.tiling import importance_map

    blending.weight_map.cache_clear()
    window = SlidingWindow((16, 16), overlap=0.5, batch_size=2, device="cpu")
    image = torch.rand(1, 1, 40, 40)
    first = window(nn.Identity(), image)
    labels = window.predict_labels(nn.Conv2d(1, 3, 1), image)
    second = window(nn.Identity(), image)
    info = blending.weight_map.cache_info()
    assert (info.misses, info.hits) == (1, 2)
    torch.testing.assert_close(second, first, rtol=0, atol=0)
    assert labels.shape == (1, 40, 40)
    cached = blending.weight_map((16, 16), window.blending, window.sigma_scale, "cpu")
    assert torch.equal(cached, torch.from_numpy(importance_map((16, 16), "gaussian")))
