"""Batch prediction of image files with a trained checkpoint (``medseg predict``).

Under ``torchrun`` (``RANK``/``WORLD_SIZE`` in the environment) each process predicts the
cases ``i`` with ``i % WORLD_SIZE == RANK``: every case is written once, by one process,
and no bookkeeping is shared. Block-wise (``block_shape``), the processes share the blocks
of each case instead (``i % WORLD_SIZE == RANK`` over the blocks, a gloo barrier around
each store), so one large volume is predicted by all of them. Each case's files are written atomically, the label map
last: a case counts as done when its label map exists, so a killed run, started again,
predicts exactly the cases that are missing (and leaves no half-written file).
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import re
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from medseg.checkpoint_meta import Checkpoint, read_checkpoint
from medseg.data.volumes import get_folder_paths
from medseg.errors import ConfigError, DataNotFoundError, MedsegError
from medseg.eval.formats import ChallengeFormat, FormatKind, get_format
from medseg.exchange.bioimageio_import import is_bioimageio_package, load_package
from medseg.exchange.objects import write_object_outputs
from medseg.infer.blockwise import predict_blockwise
from medseg.infer.postprocess import PostProcessing, label_instances
from medseg.infer.predictor import Prediction, Predictor
from medseg.infer.sliding_window import SlidingWindow
from medseg.io import Volume, open_array, read, split_key, suffix_of, write
from medseg.io.paths import file_sha256
from medseg.io.zarr_output import finished_output_problem

__all__ = [
    "PredictedCase",
    "case_name",
    "predict_files",
    "predictor_for",
    "shard",
    "write_case_submission",
]

logger = logging.getLogger(__name__)

#: Lossy or geometry-less inputs get their labels written as TIFF instead.
_LABEL_SUFFIX_FOR = {".jpg": ".tif", ".jpeg": ".tif", ".bmp": ".png"}
#: Suffixes that hold float multi-channel probabilities; others get theirs as TIFF.
_PROBABILITY_SUFFIXES = {".nii.gz", ".nii", ".tif", ".tiff", ".zarr", ".h5", ".hdf5", ".mha", ".nrrd"}
#: nnU-Net names the first channel of a case ``<case>_0000``.
_NNUNET_CHANNEL = re.compile(r"_0000$")


@dataclasses.dataclass(frozen=True)
class PredictedCase:
    case: str
    labels: Path
    submission: Path | None
    skipped: bool
    #: Objects of an instance prediction (``<case>_objects.csv``); ``None`` for class labels.
    objects: int | None = None


def case_name(path: str | Path) -> str:
    """The case id of an input file: its name without suffix, container key or nnU-Net channel.

    ``case_001.nii.gz`` → ``case_001``; ``imagesTs/right_0000.tif`` → ``right`` (nnU-Net's
    ``_0000`` first-channel suffix is dropped, so predictions pair with ``labelsTs/right.tif``).
    """
    path = split_key(path)[0]
    return _NNUNET_CHANNEL.sub("", path.name[: -len(suffix_of(path))])


def shard() -> tuple[int, int]:
    """``(rank, world_size)`` of this process under ``torchrun``; ``(0, 1)`` otherwise."""
    try:
        rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as err:
        raise ConfigError(f"RANK and WORLD_SIZE must be integers (as torchrun sets them): {err}") from None
    if not 0 <= rank < world:
        raise ConfigError(f"RANK {rank} is not in [0, WORLD_SIZE={world}); start the job with torchrun")
    return rank, world


def predict_files(
    checkpoint: str | Path | Checkpoint,
    inputs: Sequence[str | Path],
    out_dir: str | Path,
    *,
    window: SlidingWindow,
    submission_format: str | None = None,
    geojson: bool = False,
    block_shape: Sequence[int] | None = None,
    halo: Sequence[int] | None = None,
    ome_zarr: bool = False,
    save_probabilities: bool = False,
    overwrite: bool = False,
    progress: bool = False,
) -> list[PredictedCase]:
    """Predict each input file and write its label map (same grid and geometry) to ``out_dir``.

    Parameters
    ----------
    checkpoint : path or Checkpoint
        A ``.pt`` file of ``medseg train``/``medseg demo``, its ``checkpoints/`` folder or
        the training run folder, or a :class:`~medseg.checkpoint_meta.Checkpoint` already
        loaded (then the file is not read again); or a bioimage.io model package (``.zip``,
        its ``rdf.yaml`` or folder) with PyTorch weights (:func:`predictor_for`).
    inputs : sequence of path
        Image files in any format :func:`medseg.io.read` takes.
    out_dir : path
        Gets ``<case><suffix>`` label maps, named by case id (:func:`case_name`; the input's
        suffix, ``.tif`` for JPEG input) and, with ``submission_format``, the challenge files.
    window : SlidingWindow
        Tiling, TTA and device settings.
    submission_format : str, optional
        Also write each case in a challenge format (see :mod:`medseg.eval.formats`):
        ``isbi2012`` writes the non-membrane probability; instance formats get the
        watershed instances of an instance-trained checkpoint, else the connected
        components of the predicted foreground.
    geojson : bool
        Also write each case's objects as QuPath detections, ``geojson/<case>.geojson``
        (2D; an instance model's objects, else the connected components of the labels).
        Every instance prediction writes ``<case>_objects.csv`` (per-object measurements).
    block_shape, halo : sequence of int, optional
        Predict out of core: read each image lazily block by block (with ``halo``
        context, default a quarter of the window) and write ``<case>.zarr`` label maps;
        an interrupted case resumes with its missing blocks (``ome_zarr``: ``<case>.ome.zarr``,
        OME-Zarr NGFF 0.5 label images). Not combined with
        ``submission_format`` or ``geojson``.
    save_probabilities : bool
        Also write ``<case>_probabilities<suffix>`` (float32 softmax, one channel per class;
        block-wise: ``<case>_probabilities.zarr``, written block by block);
        otherwise labels are computed without a full-size probability buffer.
    overwrite : bool
        Predict cases whose label file already exists again (default: skip them, so an
        interrupted run continues where it stopped).
    progress : bool
        Show a progress bar over files.

    Returns
    -------
    list of PredictedCase
        The cases of this process (all of them, unless run under ``torchrun``).
    """
    out = Path(out_dir)
    cases = _check_request(inputs, out, submission_format, block_shape, ome_zarr, geojson)
    predictor = predictor_for(checkpoint, window)
    rank, world = shard()
    blockwise = block_shape is not None
    mine = [case for i, case in enumerate(cases) if blockwise or i % world == rank]
    if world > 1:
        logger.info("rank %d of %d: %d of %d case(s)", rank, world, len(mine), len(cases))
    together = _ranks_together() if world > 1 and blockwise else contextlib.nullcontext()
    results = []
    # many in-memory cases: the automatic compile decision weighs all of their windows
    plan = (
        predictor.window.planned(predictor.model, _job_windows(predictor, mine, out, block_shape, overwrite))
        if not blockwise and len(mine) > 1 and predictor.window.compile is None
        else contextlib.nullcontext()
    )
    with together as barrier, plan:
        for path, name in tqdm(mine, desc="cases", unit="case", disable=not progress):
            target = out / f"{name}{_label_suffix(path, block_shape, ome_zarr)}"
            if target.exists() and not overwrite:
                problem = finished_output_problem(target)
                if problem is not None:
                    raise ConfigError(
                        f"{target} exists but is not a finished prediction: {problem}; delete it or "
                        "predict with overwrite (medseg predict --overwrite)"
                    )
                logger.info("skipping %s: %s exists (use overwrite to predict it again)", path, target)
                results.append(PredictedCase(name, target, None, skipped=True))
            elif block_shape is not None:
                with open_array(path) as image:
                    labels = predict_blockwise(
                        predictor,
                        image,
                        target,
                        block_shape=block_shape,
                        halo=halo if halo is not None else _default_halo(window.roi_size, block_shape),
                        overwrite=overwrite,
                        shard=(rank, world),
                        barrier=barrier,
                        probabilities=out / f"{name}_probabilities.zarr" if save_probabilities else None,
                    )
                results.append(PredictedCase(name, labels, None, skipped=False))
            else:
                results.append(
                    _predict_case(
                        predictor,
                        path,
                        name,
                        target,
                        submission_format,
                        geojson=geojson,
                        save_probabilities=save_probabilities,
                    )
                )
    return results


def _job_windows(
    predictor: Predictor, cases: list[tuple[Path, str]], out: Path, block_shape: Any, overwrite: bool
) -> int:
    """Windows the cases still to predict will run, from their lazily opened shapes.

    A file that does not open counts nothing here: it gets its error when its turn comes.
    """
    total = 0
    for path, name in cases:
        if (out / f"{name}{_label_suffix(path, block_shape, False)}").exists() and not overwrite:
            continue
        try:
            with open_array(path) as image:
                total += predictor.count_windows(tuple(int(s) for s in image.shape[1:]))
        except (MedsegError, OSError):
            continue
    return total


def _check_request(
    inputs: Sequence[str | Path],
    out: Path,
    submission_format: str | None,
    block_shape: Sequence[int] | None,
    ome_zarr: bool,
    geojson: bool = False,
) -> list[tuple[Path, str]]:
    """``(path, case name)`` of every input, after checking the request before any work.

    Raises
    ------
    ConfigError
        The output is a file, options that do not go together, or inputs sharing a case name.
    DataNotFoundError
        An input file is missing.
    """
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output folder {out} is an existing file; pass a folder to -o/--output")
    paths = [Path(p) for p in inputs]
    missing = [str(p) for p in paths if not split_key(p)[0].exists()]
    if missing:
        raise DataNotFoundError(f"input file(s) not found: {', '.join(missing[:5])}; check the paths")
    paths = [image for p in paths for image in _images_in(p)]
    if submission_format is not None:
        get_format(submission_format)
        if block_shape is not None:
            raise ConfigError(
                "block-wise prediction writes .zarr label maps; drop the submission format or block_shape"
            )
    if geojson and block_shape is not None:
        raise ConfigError("block-wise prediction writes .zarr label maps; drop --geojson or block_shape")
    if ome_zarr and block_shape is None:
        raise ConfigError(
            "OME-Zarr output is written by block-wise prediction; pass block_shape with ome_zarr"
        )
    names = [case_name(p) for p in paths]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"inputs share case names {duplicates[:5]}; predict them into separate folders")
    return list(zip(paths, names, strict=True))


def _images_in(path: Path) -> list[Path]:
    """``[path]`` for an image (a Zarr folder counts as one); a folder's cases in name order.

    A folder's cases follow the lab-folder rule (:func:`medseg.data.volumes.get_folder_paths`):
    nnU-Net's ``<case>_0001`` ... files are further channels of ``<case>_0000``, whose file
    stands for the case.

    Raises
    ------
    DataNotFoundError
        A folder that holds no image medseg reads, or a case missing a channel.
    """
    try:
        suffix_of(path)
    except MedsegError:
        if path.is_dir():
            try:
                return [
                    case.images[0] for case in get_folder_paths(path.parent, images=path.name, labels=None)
                ]
            except DataNotFoundError as err:
                raise DataNotFoundError(
                    f"input folder {path}: {err}; pass the image files or the folder that holds them"
                ) from None
    return [path]


def _label_suffix(path: Path, block_shape: Sequence[int] | None, ome_zarr: bool) -> str:
    """Suffix of a case's label map: ``.zarr``/``.ome.zarr`` block-wise, else the input's (TIFF for lossy)."""
    if block_shape is not None:
        return ".ome.zarr" if ome_zarr else ".zarr"
    suffix = suffix_of(split_key(path)[0])
    return _LABEL_SUFFIX_FOR.get(suffix, suffix)


def _needs_probabilities(submission_format: str | None, save_probabilities: bool) -> bool:
    return save_probabilities or (
        submission_format is not None and get_format(submission_format).needs_probabilities
    )


def _predict_case(
    predictor: Predictor,
    path: Path,
    name: str,
    target: Path,
    submission_format: str | None,
    *,
    geojson: bool = False,
    save_probabilities: bool,
) -> PredictedCase:
    """Predict case ``name`` in memory and write its files, the label map ``target`` last (it marks the case done).

    The objects of an instance prediction (an instance model's, or the connected components
    when an instance format or ``geojson`` asks for objects) get ``<case>_objects.csv``.
    """
    out = target.parent
    image = read(path)
    prediction = predictor.predict(
        image, probabilities=_needs_probabilities(submission_format, save_probabilities)
    )
    fmt = None if submission_format is None else get_format(submission_format)
    objects = None
    instances = _instances_of(
        prediction, wanted=geojson or (fmt is not None and fmt.kind is FormatKind.INSTANCES)
    )
    if instances is not None:
        prediction = dataclasses.replace(prediction, instances=instances)  # components found once
        objects = write_object_outputs(
            instances, prediction.labels, image, out, name, geojson=geojson, class_names=predictor.classes
        )
    submission = None
    if fmt is not None:
        submission = write_case_submission(fmt, prediction, out / fmt.name, name, predictor)
    if save_probabilities and prediction.probabilities is not None:
        suffix = target.name[len(name) :]
        probability_suffix = suffix if suffix in _PROBABILITY_SUFFIXES else ".tif"
        write(prediction.probabilities, out / f"{name}_probabilities{probability_suffix}")
    return PredictedCase(name, write(prediction.labels, target), submission, skipped=False, objects=objects)


def _instances_of(prediction: Prediction, *, wanted: bool) -> Volume | None:
    """The objects of a prediction: an instance model's, else (when ``wanted``) the connected components."""
    if prediction.instances is not None:
        return prediction.instances
    if wanted:
        return prediction.labels.with_array(label_instances(prediction.labels.array[0])[None])
    return None


def predictor_for(model: str | Path | Checkpoint, window: SlidingWindow) -> Predictor:
    """The predictor of a medseg checkpoint or of a bioimage.io package (its network, pre/post-processing).

    Parameters
    ----------
    model : path or Checkpoint
        A loaded :class:`~medseg.checkpoint_meta.Checkpoint`, a checkpoint path (run
        folder, ``checkpoints/``, ``.pt``) or a bioimage.io package (``.zip``, its
        ``rdf.yaml`` or folder).
    window : SlidingWindow
        Tiling, TTA and device settings (:mod:`medseg.pipeline.windows` makes one for a
        checkpoint or a package).
    """
    if not isinstance(model, Checkpoint) and is_bioimageio_package(model):
        path = Path(model)
        package = load_package(path)
        identity = {"package_sha256": file_sha256(path)} if path.is_file() else {"package": package.name}
        return Predictor(
            package.model,
            window,
            package.normalization,
            classes=package.classes,
            targets=package.targets,
            postprocessing=PostProcessing.from_dict(package.postprocessing, source=path),
            identity=identity,
        )
    loaded = model if isinstance(model, Checkpoint) else read_checkpoint(model)
    return Predictor.from_checkpoint(loaded, window, identity={"checkpoint_sha256": loaded.sha256})


@contextlib.contextmanager
def _ranks_together() -> Iterator[Callable[[], None]]:
    """``torch.distributed.barrier`` of a gloo group started from torchrun's environment.

    A group started here is destroyed on the way out, after every rank has arrived (on
    success): a process that exits with a live gloo group can hang its peers at shutdown.
    """
    import torch.distributed as dist

    started = not dist.is_initialized()
    if started:
        dist.init_process_group("gloo")
    try:
        yield dist.barrier
        dist.barrier()
    finally:
        if started:
            dist.destroy_process_group()


def _default_halo(roi: Sequence[int], block_shape: Sequence[int]) -> tuple[int, ...]:
    """A quarter of the window per axis of the block (a 2D window on a 3D block leaves Z without context)."""
    roi = tuple(roi)
    return tuple(r // 4 for r in (0,) * (len(block_shape) - len(roi)) + roi)


def write_case_submission(
    fmt: str | ChallengeFormat, prediction: Prediction, out_dir: Path, case: str | int, predictor: Predictor
) -> Path:
    """Write one predicted case in challenge format ``fmt`` (probabilities, instances or classes as it needs)."""
    fmt = get_format(fmt)
    labels = prediction.labels.array[0]
    instances = None
    if fmt.kind is FormatKind.INSTANCES:  # instance formats get connected components of a class model
        objects = _instances_of(prediction, wanted=True)
        instances = None if objects is None else objects.array[0]
    probabilities = None if prediction.probabilities is None else prediction.probabilities.array
    array = fmt.prediction_array(
        labels, probabilities=probabilities, instances=instances, classes=predictor.classes
    )
    volume = prediction.labels
    geometry = (
        {"spacing": volume.spacing, "origin": volume.origin, "direction": volume.direction}
        if fmt.keeps_geometry
        else {}
    )
    return fmt.write(array, out_dir, case, **geometry)
