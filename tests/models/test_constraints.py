"""InputConstraints arithmetic and mirror padding."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from medseg.errors import ShapeError
from medseg.models import InputConstraints, mirror_pad


def test_constraints_arithmetic() -> None:
    c = InputConstraints.create(2, 1, 2, divisor=16, remainder=12, margin=92, min_size=188)
    assert c.divisor == (16, 16)
    assert c.is_valid((572, 188)) and not c.is_valid((572, 172)) and not c.is_valid((576, 572))
    assert c.padded_shape((1, 573)) == (188, 588)
    assert c.output_shape((572, 572)) == (388, 388)
    assert c.required_input_shape((388, 1)) == (572, 188)
    same = InputConstraints.create(3, 1, 2, divisor=(1, 8, 8))
    assert same.padded_shape((5, 9, 16)) == (5, 16, 16)
    assert same.output_shape((5, 16, 16)) == (5, 16, 16)


def test_constraints_errors() -> None:
    c = InputConstraints.create(2, 1, 2, divisor=8)
    with pytest.raises(ShapeError, match="2 spatial sizes"):
        c.is_valid((8, 8, 8))
    with pytest.raises(ShapeError, match="one per spatial axis"):
        InputConstraints.create(2, 1, 2, divisor=(8, 8, 8))
    with pytest.raises(ShapeError, match="positive"):
        c.required_input_shape((0, 4))


@pytest.mark.parametrize("pad", [[(1, 2), (0, 3)], [(3, 3), (2, 1)]])
def test_mirror_pad_matches_reflect_for_small_pads(pad: list[tuple[int, int]]) -> None:
    x = torch.rand(2, 3, 5, 6)
    ref = F.pad(x, (*pad[1], *pad[0]), mode="reflect")
    assert torch.equal(mirror_pad(x, pad), ref)


def test_mirror_pad_larger_than_input() -> None:
    x = torch.arange(3.0).view(1, 1, 1, 3)
    out = mirror_pad(x, [(0, 0), (5, 4)])
    assert out.flatten().tolist() == [1, 0, 1, 2, 1, 0, 1, 2, 1, 0, 1, 2]
    assert mirror_pad(torch.ones(1, 1, 1, 1), [(2, 2), (1, 0)]).shape == (1, 1, 5, 2)
