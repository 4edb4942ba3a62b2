"""The sliding window a prediction runs with: from an ``infer`` section and from a checkpoint."""

import pytest

from medseg.checkpoint_meta import read_checkpoint
from medseg.config import InferConfig
from medseg.errors import ConfigError
from medseg.infer.tiling import BlendMode
from medseg.pipeline.windows import sliding_window_from_infer, window_for_checkpoint


def test_every_infer_setting_reaches_the_window():
    infer = InferConfig(
        roi_size=(64, 48), overlap=0.25, blending="constant", batch_size=3, mirror_axes=(1,), compile=True
    )
    window = sliding_window_from_infer(infer, progress=True)
    assert window.roi_size == (64, 48) and window.overlap == 0.25 and window.batch_size == 3
    assert window.blending is BlendMode.CONSTANT and window.mirror_axes == (1,)
    assert window.compile is True and window.progress is True
    assert sliding_window_from_infer(infer, compile=False).compile is False  # the caller decides


def test_a_checkpoint_window_keeps_training_settings_under_the_options_given(runs):
    checkpoint = read_checkpoint(runs["unet2d"])  # trained with roi 32 x 32, no mirroring
    window = window_for_checkpoint(checkpoint, {"overlap": 0.75, "batch_size": None, "compile": False})
    assert window.roi_size == (32, 32) and window.mirror_axes == ()  # kept from training
    assert window.overlap == 0.75 and window.compile is False  # given
    assert window.batch_size == InferConfig().batch_size  # None keeps training's (the default there)


def test_a_window_that_does_not_fit_the_model_is_refused_naming_the_source(runs):
    checkpoint = read_checkpoint(runs["unet2d"])
    with pytest.raises(ConfigError, match="medseg predict") as err:
        window_for_checkpoint(checkpoint, {"roi_size": [32, 32, 32]}, source="medseg predict")
    assert "roi_size" in str(err.value)
