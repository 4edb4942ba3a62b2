"""One contract, every registered model: shapes, backward, state_dict, determinism, overfitting."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medseg.models import build_model, model_names
from medseg.models.blocks import center_crop

torch.set_num_threads(1)

# Small widths per model; each case: (params, input spatial shape). Spatial sizes are
# chosen valid for the model (valid-conv U-Nets get the input for a 32^2 / 16^3 output).
CASES: dict[str, list[tuple[dict, tuple[int, ...]]]] = {
    "unet": [
        ({"features": 8, "depth": 2}, (32, 32)),
        ({"features": 4, "depth": 2, "spatial_dims": 3}, (16, 16, 16)),
    ],
    "unet-paper": [
        ({"features": 8, "depth": 2}, (72, 72)),
        ({"features": 4, "depth": 1, "spatial_dims": 3}, (32, 32, 32)),
    ],
    "unet3d": [
        ({"features": 4, "depth": 1}, (32, 32, 32)),
        ({"features": 8, "depth": 2, "spatial_dims": 2}, (72, 72)),
    ],
    "fcn32s": [({"features": 8, "fc_features": 32, "dropout": 0.0}, (32, 32))],
    "fcn16s": [({"features": 8, "fc_features": 32, "dropout": 0.0}, (32, 32))],
    "fcn8s": [({"features": 8, "fc_features": 32, "dropout": 0.0}, (32, 32))],
    "sdae": [
        ({"patch_size": 9, "hidden_features": (32, 16)}, (32, 32)),
        ({"patch_size": 5, "hidden_features": (16, 8), "spatial_dims": 3}, (12, 12, 12)),
    ],
}

PARAMS = [
    pytest.param(name, params, shape, id=f"{name}-{len(shape)}d")
    for name in CASES
    for params, shape in CASES[name]
]


def test_every_registered_model_is_covered() -> None:
    assert sorted(CASES) == model_names()


def _build(name: str, params: dict, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(name, in_channels=1, out_channels=2, **params)


def _expected_out(model: torch.nn.Module, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(s - 2 * m for s, m in zip(shape, model.constraints.margin, strict=True))


@pytest.mark.parametrize(("name", "params", "shape"), PARAMS)
def test_forward_shape_and_constraints(name: str, params: dict, shape: tuple[int, ...]) -> None:
    model = _build(name, params)
    c = model.constraints
    assert (c.spatial_dims, c.in_channels, c.out_channels) == (len(shape), 1, 2)
    assert c.is_valid(shape)
    with pytest.raises(AttributeError):
        c.margin = (0,) * len(shape)  # frozen
    out = model(torch.rand(2, 1, *shape))
    assert out.shape == (2, 2, *_expected_out(model, shape))
    assert out.dtype == torch.float32


@pytest.mark.parametrize(("name", "params", "shape"), PARAMS)
def test_backward_gives_finite_grads(name: str, params: dict, shape: tuple[int, ...]) -> None:
    model = _build(name, params).train()
    out = model(torch.rand(2, 1, *shape))
    (out * torch.randn_like(out)).mean().backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, pname
            assert torch.isfinite(p.grad).all(), pname


@pytest.mark.parametrize(("name", "params", "shape"), PARAMS)
def test_state_dict_round_trip_and_eval_determinism(
    name: str, params: dict, shape: tuple[int, ...], tmp_path
) -> None:
    model = _build(name, params, seed=1)
    x = torch.rand(1, 1, *shape)
    model.train()
    with torch.no_grad():
        model(x)  # moves batch-norm running statistics away from their defaults
    path = tmp_path / "model.pt"
    torch.save(model.state_dict(), path)
    fresh = _build(name, params, seed=2)
    fresh.load_state_dict(torch.load(path, weights_only=True))
    model.eval()
    fresh.eval()
    with torch.no_grad():
        first = model(x)
        assert torch.equal(first, model(x))
        assert torch.equal(first, fresh(x))


def _blob_target(shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """A disk (2D) or ball (3D) image with noise, and its 0/1 labels."""
    grids = torch.meshgrid(*[torch.arange(s, dtype=torch.float32) for s in shape], indexing="ij")
    radius2 = sum((g - (s - 1) / 2) ** 2 for g, s in zip(grids, shape, strict=True))
    labels = (radius2 <= (min(shape) / 4) ** 2).long()
    gen = torch.Generator().manual_seed(0)
    image = labels.float() + 0.1 * torch.randn(shape, generator=gen)
    return image[None, None], labels[None]


def _dice(logits: torch.Tensor, labels: torch.Tensor) -> float:
    pred = logits.argmax(1)
    inter = ((pred == 1) & (labels == 1)).sum().item()
    return 2 * inter / max((pred == 1).sum().item() + (labels == 1).sum().item(), 1)


@pytest.mark.parametrize(
    ("name", "params", "shape"),
    [pytest.param(name, *CASES[name][0], id=name) for name in CASES],  # first case: 3D for unet3d
)
def test_overfits_one_synthetic_batch(name: str, params: dict, shape: tuple[int, ...]) -> None:
    model = _build(name, params).train()
    image, labels = _blob_target(shape)
    labels = center_crop(labels[:, None], _expected_out(model, shape))[:, 0]
    optimizer = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=3e-3)
    best = 0.0
    for _ in range(250):  # all models need < 100 steps over seeds 0-4
        logits = model(image)
        best = max(best, _dice(logits.detach(), labels))
        if best >= 0.95:
            break
        loss = F.cross_entropy(logits, labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert best >= 0.95


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize(("name", "params", "shape"), PARAMS)
def test_cuda_matches_cpu(name: str, params: dict, shape: tuple[int, ...]) -> None:
    model = _build(name, params).eval()
    x = torch.rand(2, 1, *shape)
    with torch.no_grad():
        cpu = model(x)
        gpu = model.cuda()(x.cuda()).cpu()
    assert torch.allclose(cpu, gpu, atol=1e-3, rtol=1e-3)
