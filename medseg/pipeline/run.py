"""``medseg run``: fetch → train → predict → evaluate → challenge files → ``report.md``, from one YAML.

Every stage records the digest of its inputs in ``OUT/stages.json`` and is skipped
when a later run finds the same digest and the stage's outputs in place: re-running a
finished pipeline only re-reads its results, changing ``infer`` settings re-predicts
without re-training, and an interrupted training continues from
``checkpoints/latest.pt`` when its inputs have not changed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from medseg.config import PipelineConfig, config_from_dict, load_config
from medseg.data import Sample
from medseg.data.registry import dataset_folder, get_dataset
from medseg.errors import ConfigError, DataNotFoundError
from medseg.infer.predictor import Predictor
from medseg.io.paths import file_sha256
from medseg.pipeline.datasets import load_training_samples
from medseg.pipeline.held_out import challenge_files, evaluate_held_out
from medseg.pipeline.plots import plot_training
from medseg.pipeline.report import write_report
from medseg.pipeline.results import write_json, write_yaml
from medseg.pipeline.synthetic_data import smoke_overrides, synthetic_overrides, write_synthetic
from medseg.pipeline.training import sliding_window_from_config, train_from_config
from medseg.resources import shipped_pipeline
from medseg.train.checkpoint import load_checkpoint

__all__ = ["STAGES", "RunResult", "StageLog", "challenge_format", "load_run_config", "run_pipeline"]

logger = logging.getLogger(__name__)

#: The stages of a run, in order.
STAGES: tuple[str, ...] = ("fetch", "train", "evaluate", "challenge", "report")


@dataclass(frozen=True)
class RunResult:
    """What :func:`run_pipeline` wrote and measured."""

    out_dir: Path
    validation: dict[str, Any] | None
    submission: list[Path]
    challenge: dict[str, Any] | None = None
    report: Path | None = None
    skipped: tuple[str, ...] = ()


class StageLog:
    """``stages.json`` of a run folder: per stage the digest of its inputs, its outputs and facts.

    A stage is *fresh* when its recorded digest equals the new one, it finished, and
    every output it listed still exists.
    """

    def __init__(self, out_dir: Path) -> None:
        self.path = out_dir / "stages.json"
        self.out_dir = out_dir
        self.stages: dict[str, dict[str, Any]] = (
            json.loads(self.path.read_text()) if self.path.is_file() else {}
        )

    def fresh(self, stage: str, digest: str) -> bool:
        entry = self.stages.get(stage)
        return bool(
            entry
            and entry.get("digest") == digest
            and entry.get("done")
            and all((self.out_dir / p).exists() for p in entry.get("outputs", []))
        )

    def started(self, stage: str, digest: str) -> bool:
        """The stage began with these inputs before (it may not have finished)."""
        return self.stages.get(stage, {}).get("digest") == digest

    def info(self, stage: str) -> dict[str, Any]:
        return dict(self.stages.get(stage, {}).get("info", {}))

    def begin(self, stage: str, digest: str) -> None:
        self.stages[stage] = {"digest": digest, "done": False}
        self._save()

    def finish(self, stage: str, digest: str, outputs: Iterable[Path], info: dict[str, Any]) -> None:
        rel = [str(Path(p).resolve().relative_to(self.out_dir.resolve())) for p in outputs]
        self.stages[stage] = {"digest": digest, "done": True, "outputs": rel, "info": info}
        self._save()

    def _save(self) -> None:
        write_json(self.path, self.stages)


def _digest(*parts: Any) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
    return h.hexdigest()[:16]


def _data_fingerprint(folder: Path) -> list[tuple[str, int, int]]:
    """Relative path, size and modification time of every file of a dataset folder."""
    return [
        (str(p.relative_to(folder)), p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    ]


def challenge_format(dataset: str) -> str:
    """The challenge file format of a dataset (its registry entry's; ``labelmap`` when the challenge has none)."""
    return get_dataset(dataset).challenge_format


def load_run_config(
    pipeline: str | Path,
    overrides: list[str],
    *,
    data: str = "real",
    smoke: bool = False,
    out: Path | None = None,
) -> PipelineConfig:
    """The validated config of a run: a YAML path or shipped pipeline name, smoke and synthetic-data settings, then ``overrides``.

    Smoke and synthetic settings come first so that the user's ``--set`` wins.
    With ``data="synthetic"`` the data root is ``out/data``.
    """
    path = Path(pipeline)
    if not path.is_file() and path.suffix not in (".yaml", ".yml") and len(path.parts) == 1:
        path = shipped_pipeline(str(pipeline))
    config = load_config(path, overrides)
    extra = smoke_overrides(config) if smoke else []
    if data == "synthetic":
        if out is None:
            raise ConfigError("--data synthetic needs an output folder to write the synthetic data into")
        extra += synthetic_overrides(config, Path(out) / "data")
        if config.train.init is not None:  # fine-tuning: the source model is trained first (run_pipeline)
            extra.append(f"train.init={Path(out) / 'source' / 'checkpoints' / 'best.pt'}")
    return load_config(path, [*extra, *overrides]) if extra else config


def _train_synthetic_source(
    config: PipelineConfig, train_samples: list[Sample], val_samples: list[Sample], progress: bool
) -> None:
    """Train the checkpoint a fine-tuning run starts from, when synthetic data stands in for a real source.

    The source run is the same model and data without ``train.init`` (no frozen stages,
    full learning rate), written to the folder two levels above ``train.init``
    (``OUT/source``), so the fine-tuning recipe runs end to end without a user's checkpoint.
    """
    source = Path(config.train.init)
    raw = config.model_dump(mode="json")
    raw["name"] = f"{config.name}-source"
    raw["train"].update(init=None, label_map={}, freeze_encoder_stages=0, pretrained_lr_factor=1.0)
    logger.info("train: no source checkpoint %s yet; training it on the synthetic data first", source)
    train_from_config(
        config_from_dict(raw, source="synthetic source run"),
        train_samples,
        val_samples,
        source.parents[1],
        progress=progress,
    )


def run_pipeline(
    config: PipelineConfig,
    out_dir: str | Path,
    *,
    resume: bool = False,
    progress: bool = False,
    data: str = "real",
    smoke: bool = False,
) -> RunResult:
    """Run a whole pipeline into ``out_dir``, skipping the stages whose inputs have not changed.

    1. **fetch**: with ``data="synthetic"`` write synthetic data in the dataset's layout
       under ``data.root`` (:mod:`medseg.pipeline.synthetic_data`; smaller with
       ``smoke``); with real data fetch it (``medseg fetch``) unless it is already there;
    2. **train** on ``data.dataset`` (``checkpoints/``, ``training_curve.png``);
       continues from ``checkpoints/latest.pt`` when a training with the same inputs was
       interrupted (or ``resume``);
    3. **evaluate**: predict the held-out validation cases and score them
       (``validation/``: predictions, references, and ``medseg evaluate``'s
       ``per_case.csv``, ``summary.json`` and plot);
    4. **challenge**: the held-out cases again in the challenge's own file format,
       scored with the challenge's metrics (``challenge/held_out``), and for datasets with
       a challenge test split (ISBI 2012) the submission files (``submission/``);
    5. **report**: ``report.md`` with the plots and the measured numbers beside the
       published ones (:mod:`medseg.pipeline.report`).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    log = StageLog(out)
    skipped: list[str] = []
    write_yaml(out / "config.yaml", config.model_dump(mode="json"))

    folder, (train_samples, val_samples) = _fetch(
        config, log, data=data, smoke=smoke, skipped=skipped, progress=progress
    )
    fingerprint = _data_fingerprint(folder)

    train_digest = _digest(config.data, config.model, config.train, fingerprint)
    best = out / "checkpoints" / "best.pt"
    if log.fresh("train", train_digest):
        skipped.append("train")
        logger.info("train: inputs unchanged since the last run; using %s", best)
    else:
        cont = resume or (
            log.started("train", train_digest) and (out / "checkpoints" / "latest.pt").is_file()
        )
        log.begin("train", train_digest)
        if data == "synthetic" and config.train.init is not None and not Path(config.train.init).is_file():
            _train_synthetic_source(config, train_samples, val_samples, progress)
        trained = train_from_config(config, train_samples, val_samples, out, resume=cont, progress=progress)
        curve = plot_training(out / "training_curve.png", trained.result.losses, trained.result.validation)
        log.finish(
            "train",
            train_digest,
            [best, curve],
            {
                "iterations": trained.result.iterations,
                "train_seconds": round(trained.result.seconds, 2),
                "device": trained.device,
                "resumed": cont,
            },
        )
    trained_info = log.info("train")

    model_digest = _digest(file_sha256(best), config.infer, fingerprint)
    predictor: Predictor | None = None

    def get_predictor() -> Predictor:
        nonlocal predictor
        if predictor is None:
            predictor = Predictor.from_checkpoint(load_checkpoint(best), sliding_window_from_config(config))
        return predictor

    validation = _stage(
        log,
        "evaluate",
        model_digest,
        skipped,
        lambda: (
            evaluate_held_out(get_predictor(), val_samples, out / "validation", progress)
            if val_samples
            else None
        ),
        out / "validation" / "evaluation" / "summary.json",
        clear=[out / "validation"],
        writes_result=True,
    )
    fmt = challenge_format(config.data.dataset)
    challenge_written = _stage(
        log,
        "challenge",
        _digest(model_digest, fmt),
        skipped,
        lambda: challenge_files(config, get_predictor(), val_samples, out, fmt, progress),
        out / "challenge" / "files.json",
        clear=[out / "challenge", out / "submission"],
    )
    challenge = challenge_written["held_out"] if challenge_written else None
    submission = [Path(p) for p in (challenge_written or {}).get("submission", [])]
    run_summary = {
        "name": config.name,
        "data": data,
        "smoke": smoke,
        "iterations": trained_info.get("iterations"),
        "train_seconds": trained_info.get("train_seconds"),
        "device": trained_info.get("device"),
        "validation_foreground_mean": None if validation is None else validation["foreground_mean"],
        "challenge_format": fmt,
        "challenge_held_out_mean": None if challenge is None else challenge.get("foreground_mean"),
        # the values a challenge pools over cases (CTC SEG and DET, GlaS object metrics)
        "challenge_held_out_pooled": None if challenge is None else challenge.get("pooled"),
        "submission": [str(p) for p in submission],
        "skipped_stages": skipped,
    }
    write_json(out / "run_summary.json", run_summary)
    report_digest = _digest(
        {k: v for k, v in run_summary.items() if k != "skipped_stages"},
        validation,
        challenge,
        _published_digest(),
    )
    report = out / "report.md"
    if log.fresh("report", report_digest):
        skipped.append("report")
    else:
        log.begin("report", report_digest)
        write_report(out, config, run_summary, validation, challenge)
        log.finish("report", report_digest, [report], {})
    return RunResult(
        out_dir=out,
        validation=validation,
        submission=submission,
        challenge=challenge,
        report=report,
        skipped=tuple(skipped),
    )


def _published_digest() -> str:
    from medseg.pipeline.report import published_path

    return file_sha256(published_path())


def _stage(
    log: StageLog,
    stage: str,
    digest: str,
    skipped: list[str],
    work: Callable[[], Any],
    result_file: Path,
    *,
    clear: Iterable[Path] = (),
    writes_result: bool = False,
) -> Any:
    """Run ``work`` unless the stage is fresh; its JSON-able result is kept in ``result_file``.

    ``clear``: the stage's output folders, emptied before it runs again (no stale case
    files from an earlier run). ``writes_result``: ``work`` writes ``result_file``
    itself (``medseg evaluate``'s ``summary.json``) whenever it returns a result.
    """
    if log.fresh(stage, digest):
        skipped.append(stage)
        logger.info("%s: inputs unchanged since the last run; reusing %s", stage, result_file)
        text = result_file.read_text()
        return json.loads(text) if text.strip() != "null" else None
    log.begin(stage, digest)
    for folder in clear:
        if folder.is_dir():
            shutil.rmtree(folder)
    started = time.perf_counter()
    result = work()
    if result is None or not writes_result:
        write_json(result_file, result)
    log.finish(stage, digest, [result_file], {"seconds": round(time.perf_counter() - started, 2)})
    return result


def _fetch(
    config: PipelineConfig, log: StageLog, *, data: str, smoke: bool, skipped: list[str], progress: bool
) -> tuple[Path, tuple[list[Sample], list[Sample]]]:
    """Make the dataset available under ``data.root``: its folder and its (training, held-out) samples."""
    entry = get_dataset(config.data.dataset)
    root = Path(config.data.root) if config.data.root is not None else None
    if data == "synthetic":
        digest = _digest(
            "synthetic", entry.name, smoke, config.data.seed, str(root), len(config.data.patch_shape)
        )
        if log.fresh("fetch", digest):
            skipped.append("fetch")
            logger.info("fetch: synthetic %s already written under %s", entry.name, root)
        else:
            log.begin("fetch", digest)
            previous = root / entry.folder if root is not None else None
            if (
                previous is not None
                and previous.is_dir()
                and previous.resolve().is_relative_to(log.out_dir.resolve())
            ):
                shutil.rmtree(
                    previous
                )  # synthetic data of another size or seed, written by an earlier run here
            folder = write_synthetic(
                entry.name,
                root,
                smoke=smoke,
                seed=config.data.seed,
                spatial_dims=len(config.data.patch_shape),
            )
            log.finish("fetch", digest, [folder], {"synthetic": True, "smoke": smoke})
        return dataset_folder(entry, root), load_training_samples(config.data)
    try:
        samples = load_training_samples(config.data)
        skipped.append("fetch")
        logger.info("fetch: %s is already under %s; nothing fetched", entry.name, root)
    except DataNotFoundError:
        from medseg.data.fetch import fetch_dataset

        logger.info("fetch: %s not found under %s; fetching it", entry.name, root)
        fetch_dataset(entry.name, root, progress=progress)
        samples = load_training_samples(config.data)
    return dataset_folder(entry, root), samples
