"""Instance post-processing: thresholds as one object, the 'both' heads, dispatch by target."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from medseg.errors import ConfigError, FormatError, ShapeError
from medseg.infer.postprocess import PostProcessing, instances_from_both, instances_from_maps
from medseg.options import InstanceTarget


def _two_touching_discs():
    yy, xx = np.indices((32, 48))
    truth = np.zeros((32, 48), dtype=np.uint32)
    truth[(yy - 16) ** 2 + (xx - 14) ** 2 <= 81] = 1
    truth[((yy - 16) ** 2 + (xx - 31) ** 2 <= 64) & (truth == 0)] = 2
    distance = np.zeros(truth.shape, dtype=np.float32)
    for i in (1, 2):
        d = ndimage.distance_transform_edt(truth == i)
        distance += (0.9 * d / d.max()).astype(np.float32)  # peaks at 0.9
    inside = ndimage.binary_erosion(truth == 1) | ndimage.binary_erosion(truth == 2)
    boundary = (truth > 0) & ~inside
    probabilities = np.stack([truth == 0, inside, boundary]).astype(np.float32)
    return truth, probabilities, distance


def test_post_processing_checks_values_and_round_trips_through_a_dict():
    params = PostProcessing(seed_threshold=0.7, foreground_threshold=0.4, min_size=25)
    assert PostProcessing.from_dict({**params.to_dict(), "tuned": True, "validation_aji": 0.8}) == params
    assert PostProcessing.from_dict(None) == PostProcessing()
    assert PostProcessing.from_dict({"min_size": None}) == PostProcessing()
    with pytest.raises(FormatError, match=r"best\.pt: checkpoint post-processing .* not valid"):
        PostProcessing.from_dict({"seed_threshold": 1.5}, source="best.pt")
    with pytest.raises(ConfigError, match=r"seed_threshold must be in \(0, 1\), got 1.2"):
        PostProcessing(seed_threshold=1.2)
    with pytest.raises(ConfigError, match="min_size must be >= 0"):
        PostProcessing(min_size=-1)


def test_both_heads_split_touching_discs_and_maps_dispatch_on_the_target():
    truth, probabilities, distance = _two_touching_discs()
    both = instances_from_both(probabilities, distance, min_size=0)
    assert sorted(np.unique(both)) == [0, 1, 2]
    for i in (1, 2):  # each disc is one object
        assert len(np.unique(both[truth == i])) == 1
    np.testing.assert_array_equal(both > 0, truth > 0)
    maps = np.concatenate([probabilities, distance[None]])
    np.testing.assert_array_equal(
        instances_from_maps(maps, InstanceTarget.BOTH, PostProcessing(min_size=0)), both
    )
    # a seed threshold above every distance (0.9 at most) leaves no seeds, so no objects
    assert instances_from_maps(maps, InstanceTarget.BOTH, PostProcessing(seed_threshold=0.95)).max() == 0
    # min_size above both discs' areas removes them
    assert (
        instances_from_maps(maps, InstanceTarget.BOTH, PostProcessing(min_size=int((truth > 0).sum()))).max()
        == 0
    )
    distance_maps = np.stack([(truth > 0).astype(np.float32), distance])
    assert instances_from_maps(distance_maps, InstanceTarget.DISTANCE, PostProcessing(min_size=0)).max() == 2
    with pytest.raises(ShapeError, match="the both target has 4 maps"):
        instances_from_maps(probabilities, InstanceTarget.BOTH, PostProcessing())
    with pytest.raises(ConfigError, match="instance_target must be one of"):
        instances_from_maps(maps, "stars", PostProcessing())
