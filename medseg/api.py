"""The library entry points: train, predict and evaluate, as the CLI runs them.

Each function calls what the matching ``medseg`` command calls (``medseg train``,
``medseg predict``, ``medseg evaluate``) and returns its result instead of printing.
They are reached as ``medseg.train``, ``medseg.predict`` and ``medseg.evaluate``
(imported on first use, so ``import medseg`` stays cheap).

Examples
--------
>>> import medseg
>>> run = medseg.train("pipelines/isbi2012.yaml", out="runs/isbi", overrides=["train.iterations=50"])  # doctest: +SKIP
>>> medseg.predict(run.checkpoint_dir, ["test-volume.tif"], "runs/isbi/pred")                          # doctest: +SKIP
>>> medseg.evaluate("runs/isbi/pred", "labels/", format="labelmap", out="runs/isbi/eval")              # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from medseg.config import PipelineConfig
    from medseg.pipeline.predicting import PredictedCase
    from medseg.pipeline.training import TrainedModel

__all__ = ["evaluate", "predict", "train"]


def train(
    config: PipelineConfig | Mapping[str, Any] | str | Path,
    *,
    out: str | Path,
    overrides: Sequence[str] = (),
    resume: bool = False,
    progress: bool = False,
) -> TrainedModel:
    """Train the model of a pipeline config on its dataset, as ``medseg train`` does.

    Parameters
    ----------
    config : PipelineConfig, dict, str or path
        A pipeline YAML file (``pipelines/*.yaml``), a dict with its sections (``data``,
        ``model``, ``train``, ``infer``) or a validated :class:`~medseg.config.PipelineConfig`.
    out : str or path
        Run folder: gets ``checkpoints/latest.pt`` and ``best.pt``, ``config.yaml``,
        ``train_summary.json`` and ``training_curve.png``.
    overrides : sequence of str
        ``section.key=value`` changes (``--set``), e.g. ``["train.iterations=50"]``.
    resume : bool
        Continue ``out/checkpoints/latest.pt`` exactly (``--resume``).
    progress : bool
        Show a progress bar.

    Returns
    -------
    TrainedModel
        The training result (losses, validation scores) and the checkpoint folder;
        ``.best`` is the path of ``best.pt``.

    Raises
    ------
    ConfigError, DataNotFoundError
        Invalid config or override, missing dataset root; checked before training.

    Examples
    --------
    >>> import medseg
    >>> run = medseg.train("pipelines/isbi2012.yaml", out="runs/isbi")   # doctest: +SKIP
    >>> run.best                                                          # doctest: +SKIP
    PosixPath('runs/isbi/checkpoints/best.pt')
    """
    from medseg.config import PipelineConfig, apply_overrides, config_from_dict, load_config
    from medseg.pipeline.training import run_training

    if isinstance(config, PipelineConfig):
        raw: Mapping[str, Any] = config.model_dump(mode="json")
        config = config_from_dict(apply_overrides(dict(raw), list(overrides))) if overrides else config
    elif isinstance(config, Mapping):
        config = config_from_dict(apply_overrides(dict(config), list(overrides)))
    else:
        config = load_config(config, list(overrides))
    return run_training(config, out, resume=resume, progress=progress)


def predict(
    model: str | Path,
    inputs: Sequence[str | Path] | str | Path,
    out: str | Path,
    *,
    infer: Mapping[str, Any] | None = None,
    format: str | None = None,
    block_shape: Sequence[int] | None = None,
    save_probabilities: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> list[PredictedCase]:
    """Predict label maps for image files with a trained checkpoint, as ``medseg predict`` does.

    Parameters
    ----------
    model : str or path
        The training run folder, its ``checkpoints/`` folder (``best.pt``) or a ``.pt`` file.
    inputs : path or sequence of paths
        Image files in any format :func:`medseg.read` takes.
    out : str or path
        Output folder: ``<case><suffix>`` label maps on each input's grid (resumable:
        existing outputs are skipped unless ``overwrite``).
    infer : dict, optional
        Window settings on top of training's ``infer`` section: ``roi_size``, ``overlap``,
        ``batch_size``, ``device``, ``precision``, ``mirror_axes`` (``[]``: no TTA), ``compile``.
    format : str, optional
        Also write a challenge submission in ``out/<format>`` (``isbi2012``, ``ctc``, ``glas``...).
    block_shape : sequence of int, optional
        Predict out of core, block by block, into ``<case>.zarr``.
    save_probabilities : bool
        Also write ``<case>_probabilities`` (float32, one channel per class).
    overwrite : bool
        Predict cases whose output exists again.
    progress : bool
        Show a progress bar.

    Returns
    -------
    list of PredictedCase
        Per case: its id, label file, submission file and whether it was skipped.

    Examples
    --------
    >>> import medseg
    >>> cases = medseg.predict("runs/isbi", ["test-volume.tif"], "runs/isbi/pred",
    ...                        infer={"overlap": 0.25})                      # doctest: +SKIP
    >>> medseg.read(cases[0].labels).array.shape                              # doctest: +SKIP
    (1, 30, 512, 512)
    """
    from medseg.checkpoint_meta import read_checkpoint
    from medseg.pipeline.predicting import predict_files
    from medseg.pipeline.windows import window_for_checkpoint

    checkpoint = read_checkpoint(model)
    window = window_for_checkpoint(checkpoint, infer, progress=progress)
    paths = [inputs] if isinstance(inputs, str | Path) else list(inputs)
    return predict_files(
        checkpoint,
        paths,
        out,
        window=window,
        submission_format=format,
        block_shape=block_shape,
        save_probabilities=save_probabilities,
        overwrite=overwrite,
        progress=progress,
    )


def evaluate(
    pred: str | Path,
    gt: str | Path,
    *,
    format: str,
    out: str | Path,
    progress: bool = False,
    **options: Any,
) -> dict[str, Any]:
    """Score a folder of predictions against the references, as ``medseg evaluate`` does.

    Parameters
    ----------
    pred, gt : str or path
        Folders of predictions and references, paired by case (CTC: ``XX_RES``/``XX_GT``).
    format : str
        Challenge file format (``labelmap``, ``isbi2012``, ``ctc``, ``glas``, ``monuseg``...).
    out : str or path
        Gets ``per_case.csv``, ``summary.json`` (nnU-Net layout) and ``metrics.png``.
    progress : bool
        Show a progress bar.
    **options
        Passed to :func:`medseg.eval.report.evaluate_folders`: ``workers``, ``spacing``,
        ``tolerance``, ``labels``, ``nsd_method``, ``border_threshold``, ``plot``.

    Returns
    -------
    dict
        The ``summary.json`` content: ``metric_per_case``, ``mean``, ``foreground_mean``, ``pooled``.

    Examples
    --------
    >>> import medseg
    >>> summary = medseg.evaluate("pred/", "gt/", format="labelmap", out="eval/")   # doctest: +SKIP
    >>> summary["foreground_mean"]["Dice"]                                          # doctest: +SKIP
    0.93
    """
    from medseg.eval.report import evaluate_folders

    return evaluate_folders(pred, gt, format, out, progress=progress, **options)
