from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from medseg.cli.main import main
from medseg.io import Volume, read, write
from medseg.models import build_model
from medseg.train.checkpoint import save_checkpoint

REPO = Path(__file__).resolve().parents[2]


def _checkpoint(run: Path) -> Path:
    torch.manual_seed(0)
    model = build_model("unet", in_channels=1, out_channels=2, features=4, depth=2)
    metadata = {
        "model": {"name": "unet", "params": {"in_channels": 1, "out_channels": 2, "features": 4, "depth": 2}},
        "normalization": {"mean": [0.5], "std": [0.25]},
        "classes": ["background", "cell"],
        "config": {"infer": {"roi_size": [32, 32], "overlap": 0.25, "batch_size": 2, "mirror_axes": []}},
    }
    return save_checkpoint(run / "checkpoints" / "best.pt", model=model, metadata=metadata)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    run = tmp_path_factory.mktemp("run")
    _checkpoint(run)
    return run


def _images(folder: Path, names: list[str], shape=(40, 48)) -> list[str]:
    rng = np.random.default_rng(0)
    return [str(write(Volume(rng.random((1, *shape), dtype=np.float32)), folder / n)) for n in names]


def test_model_option_takes_the_run_folder_checkpoints_or_a_file(run_dir, tmp_path, capsys):
    (image,) = _images(tmp_path / "in", ["a.tif"])
    outputs = []
    for model in (run_dir, run_dir / "checkpoints", run_dir / "checkpoints" / "best.pt"):
        out = tmp_path / f"out{len(outputs)}"
        assert main(["predict", "-m", str(model), "-i", image, "-o", str(out), "--no-progress"]) == 0
        outputs.append(read(out / "a.tif").array)
    assert all(np.array_equal(outputs[0], o) for o in outputs[1:])
    assert main(["predict", "-m", str(tmp_path), "-i", image, "-o", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert f"no checkpoint at {tmp_path}" in err and "checkpoints/best.pt" in err


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--overlap", "1.5", "--overlap (infer.overlap): Input should be less than 1 (got 1.5)"),
        ("--batch-size", "0", "--batch-size (infer.batch_size): Input should be greater than or equal to 1"),
    ],
)
def test_bad_options_are_config_errors_naming_the_option(run_dir, tmp_path, capsys, option, value, message):
    (image,) = _images(tmp_path / "in", ["a.tif"])
    assert main(["predict", "-m", str(run_dir), "-i", image, "-o", str(tmp_path / "o"), option, value]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_output_that_is_a_file_is_refused(run_dir, tmp_path, capsys):
    (image,) = _images(tmp_path / "in", ["a.tif"])
    (tmp_path / "taken").write_text("x")
    with pytest.raises(SystemExit) as exit_info:  # refused by the -o argument type, before any work
        main(["predict", "-m", str(run_dir), "-i", image, "-o", str(tmp_path / "taken")])
    assert exit_info.value.code == 2
    assert (
        "is an existing file, not a folder" in capsys.readouterr().err
        and (tmp_path / "taken").read_text() == "x"
    )


def test_predictions_are_named_by_case_id_and_probabilities_only_on_request(run_dir, tmp_path):
    images = _images(tmp_path / "imagesTs", ["right_0000.tif", "left_0000.nii.gz"])
    out = tmp_path / "pred"
    assert main(["predict", "-m", str(run_dir), "-i", *images, "-o", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["left.nii.gz", "right.tif"]
    labels = read(out / "right.tif").array
    assert labels.dtype == np.uint8 and labels.shape == (1, 40, 48)
    again = tmp_path / "again"
    args = ["predict", "-m", str(run_dir), "-i", images[0], "-o", str(again), "--save-probabilities"]
    assert main([*args, "--no-progress"]) == 0
    probabilities = read(again / "right_probabilities.tif").array
    assert probabilities.shape == (2, 40, 48)
    np.testing.assert_allclose(probabilities.sum(axis=0), 1.0, atol=1e-5)
    np.testing.assert_array_equal(probabilities.argmax(axis=0), labels[0])


def test_a_folder_input_predicts_every_image_in_it_once(run_dir, tmp_path, capsys):
    folder = tmp_path / "imagesTs"
    _images(folder, ["right_0000.tif", "right_0001.tif", "left_0000.nii.gz"])
    (folder / "notes.txt").write_text("not an image")
    (folder / ".hidden.tif").write_text("editor backup")
    out = tmp_path / "pred"
    assert main(["predict", "-m", str(run_dir), "-i", str(folder), "-o", str(out), "--no-progress"]) == 0
    # right_0001 is right's second nnU-Net channel, as in a lab folder
    assert sorted(p.name for p in out.iterdir()) == ["left.nii.gz", "right.tif"]
    assert "predicted 2 case(s)" in capsys.readouterr().out
    mixed = tmp_path / "mixed"
    _images(mixed, ["a.tif", "patient_0001.tif"])  # not every file ends in _NNNN: each is a case
    assert (
        main(["predict", "-m", str(run_dir), "-i", str(mixed), "-o", str(tmp_path / "p1"), "--no-progress"])
        == 0
    )
    assert sorted(p.name for p in (tmp_path / "p1").iterdir()) == ["a.tif", "patient_0001.tif"]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("")
    assert main(["predict", "-m", str(run_dir), "-i", str(empty), "-o", str(tmp_path / "p2")]) != 0
    err = capsys.readouterr().err
    assert f"input folder {empty}: no readable images" in err and "Traceback" not in err
    assert not (tmp_path / "p2").exists()


def test_compile_option_predicts_the_eager_probabilities(run_dir, tmp_path):
    images = _images(tmp_path / "in", ["a.tif", "b.tif"], shape=(50, 70))
    probabilities = {}
    for flags in (["--no-compile"], ["--compile"]):
        out = tmp_path / ("compiled" if flags else "eager")
        args = ["predict", "-m", str(run_dir), "-i", *images, "-o", str(out), "--save-probabilities"]
        assert main([*args, *flags, "--no-progress"]) == 0
        probabilities[flags == ["--compile"]] = [read(out / f"{c}_probabilities.tif").array for c in "ab"]
    for eager, compiled in zip(probabilities[False], probabilities[True], strict=True):
        np.testing.assert_allclose(compiled, eager, rtol=0, atol=1e-5)


def test_compile_is_decided_from_the_windows_of_all_cases(run_dir, tmp_path, caplog, monkeypatch):
    from medseg.infer import compile_policy

    # three 100 x 100 images of 4 x 4 windows: the first decides for its 12 left plus 2 x 16
    images = _images(tmp_path / "in", ["a.tif", "b.tif", "c.tif"], shape=(100, 100))
    seen = []
    monkeypatch.setattr(
        compile_policy, "compile_pays_off", lambda windows, *a, **k: seen.append(windows) or False
    )
    assert (
        main(["predict", "-m", str(run_dir), "-i", *images, "-o", str(tmp_path / "out"), "--no-progress"])
        == 0
    )
    assert seen == [12 + 32, 12 + 16, 12]


def test_compile_is_decided_from_the_windows_and_said_in_one_line_unless_a_flag_decides(
    run_dir, tmp_path, caplog, monkeypatch
):
    from medseg.infer import compile_policy

    # 100 x 100 with 32^2 windows at overlap 0.25: 4 x 4 windows, 8 batches of 2
    (image,) = _images(tmp_path / "in", ["a.tif"], shape=(100, 100))
    monkeypatch.setattr(compile_policy, "_COMPILE_SECONDS", {2: 1e6})  # never repaid: stays uncompiled
    runs = {}
    for flags in ([], ["--no-compile"]):
        caplog.clear()
        out = tmp_path / ("auto" if not flags else "off")
        assert (
            main(["predict", "-m", str(run_dir), "-i", image, "-o", str(out), "--no-progress", *flags]) == 0
        )
        runs[bool(flags)] = [
            r.getMessage() for r in caplog.records if "compiling the model" in r.getMessage()
        ]
    # automatic: decided after two batches, for the 12 windows left; the flag: nothing to decide
    assert len(runs[False]) == 1 and runs[False][0].startswith("not compiling the model: 12 windows left")
    assert runs[True] == []
    np.testing.assert_array_equal(
        read(tmp_path / "auto" / "a.tif").array, read(tmp_path / "off" / "a.tif").array
    )


def test_checkpoint_with_a_partial_config_is_checked_against_its_own_model(tmp_path):
    # written outside `medseg train`: the config holds only the window; the model is 3D with 3 classes
    torch.manual_seed(0)
    params = {"in_channels": 1, "out_channels": 3, "spatial_dims": 3, "features": 4, "depth": 1}
    metadata = {
        "model": {"name": "unet", "params": params},
        "normalization": {"mean": [0.5], "std": [0.25]},
        "classes": ["background", "a", "b"],
        "config": {"infer": {"roi_size": [8, 16, 16], "mirror_axes": []}},
    }
    save_checkpoint(
        tmp_path / "run" / "checkpoints" / "best.pt", model=build_model("unet", **params), metadata=metadata
    )
    (image,) = _images(tmp_path / "in", ["v.tif"], shape=(10, 20, 18))
    args = ["predict", "-m", str(tmp_path / "run"), "-i", image, "-o", str(tmp_path / "out"), "--no-progress"]
    assert main(args) == 0
    assert read(tmp_path / "out" / "v.tif").array.shape == (1, 10, 20, 18)
    assert main([*args[:-1], "--roi-size", "8", "16", "--overwrite"]) == 2  # a 2D window for a 3D model


def _torchrun(run_dir: Path, images: list[str], out: Path, *extra: str) -> subprocess.CompletedProcess:
    with socket.socket() as free:  # a port for torchrun's rendezvous and the gloo group
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    torchrun = Path(sys.executable).with_name("torchrun")
    command = [str(torchrun), "--nproc_per_node", "2", "--master_port", str(port)]
    command += [*_predict_command(run_dir, images, out)[1:], *extra]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(command, cwd=REPO, capture_output=True, text=True, env=env, timeout=300)


def _predict_command(run_dir: Path, images: list[str], out: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "medseg",
        "predict",
        "-m",
        str(run_dir),
        "-i",
        *images,
        "-o",
        str(out),
        "--no-progress",
    ]


def test_killed_predict_resumes_without_partial_outputs(run_dir, tmp_path):
    images = _images(tmp_path / "in", [f"case{i:02d}.tif" for i in range(16)], shape=(64, 64))
    out = tmp_path / "out"
    process = subprocess.Popen(_predict_command(run_dir, images, out), cwd=REPO, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (out.exists() and any(out.glob("*.tif"))):
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    done = sorted(out.glob("*.tif"))
    assert 0 < len(done) < 16, "kill the run while it is predicting"
    # nothing else but, at most, the hidden temporary file of the write that was cut
    # (".<name>.medseg-tmp-<pid>-<random>", medseg.io._common; the kill lands inside a write now and then)
    assert all(p in done or re.fullmatch(r"\.case\d\d\.tif\.medseg-tmp-.+", p.name) for p in out.iterdir()), (
        sorted(p.name for p in out.iterdir())
    )
    for path in done:  # every file there is complete and readable
        assert read(path).array.shape == (1, 64, 64)
    assert main(["predict", "-m", str(run_dir), "-i", *images, "-o", str(out), "--no-progress"]) == 0
    assert sorted(p.name for p in out.glob("*.tif")) == [f"case{i:02d}.tif" for i in range(16)]
    clean = tmp_path / "clean"
    assert main(["predict", "-m", str(run_dir), "-i", *images[-2:], "-o", str(clean), "--no-progress"]) == 0
    for name in ("case14.tif", "case15.tif"):
        np.testing.assert_array_equal(read(out / name).array, read(clean / name).array)


def test_torchrun_with_two_ranks_writes_every_case_exactly_once(run_dir, tmp_path):
    images = _images(tmp_path / "in", [f"c{i}.tif" for i in range(5)])
    out = tmp_path / "out"
    result = _torchrun(run_dir, images, out)
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if ": cases " in line]
    per_rank = {line.split(":")[0]: line.split(": cases ")[1].split(", ") for line in lines}
    assert sorted(per_rank) == ["rank 0 of 2", "rank 1 of 2"]
    cases = [c for names in per_rank.values() for c in names]
    assert sorted(cases) == [f"c{i}" for i in range(5)]  # each case by exactly one rank
    assert sorted(p.name for p in out.iterdir()) == [f"c{i}.tif" for i in range(5)]


def test_torchrun_shares_the_blocks_of_one_volume(run_dir, tmp_path):
    rng = np.random.default_rng(1)
    stack = str(write(Volume(rng.random((1, 3, 40, 48), dtype=np.float32)), tmp_path / "stack.zarr"))
    blocks = ["--block-shape", "1", "32", "32", "--halo", "0", "8", "8"]
    single = tmp_path / "single"
    assert (
        main(["predict", "-m", str(run_dir), "-i", stack, "-o", str(single), "--no-progress", *blocks]) == 0
    )
    out = tmp_path / "out"
    result = _torchrun(run_dir, [stack], out, *blocks)
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(p.name for p in out.iterdir()) == ["stack.zarr"]  # finished, no .incomplete left
    np.testing.assert_array_equal(read(out / "stack.zarr").array, read(single / "stack.zarr").array)


def test_ome_zarr_option_writes_the_same_labels_as_an_ngff_group(run_dir, tmp_path):
    import zarr

    rng = np.random.default_rng(2)
    stack = write(
        Volume(rng.random((1, 3, 40, 48), dtype=np.float32), spacing=(2.0, 1.0, 1.0)), tmp_path / "s.zarr"
    )
    blocks = ["--block-shape", "1", "32", "32", "--halo", "0", "8", "8"]
    base = ["predict", "-m", str(run_dir), "-i", str(stack), "--no-progress", *blocks]
    assert main([*base, "-o", str(tmp_path / "plain")]) == 0
    assert main([*base, "-o", str(tmp_path / "ome"), "--ome-zarr"]) == 0
    group = zarr.open_group(str(tmp_path / "ome" / "s.ome.zarr"), mode="r")
    (multiscale,) = group.attrs["ome"]["multiscales"]
    assert multiscale["datasets"][0]["coordinateTransformations"][0]["scale"] == [2.0, 1.0, 1.0]
    plain = read(tmp_path / "plain" / "s.zarr")
    np.testing.assert_array_equal(group["0"][...], plain.array[0])
    again = read(tmp_path / "ome" / "s.ome.zarr")  # medseg reads its OME-Zarr back, geometry included
    np.testing.assert_array_equal(again.array, plain.array)
    assert again.spacing == plain.spacing == (2.0, 1.0, 1.0)
    # both stores are cases of medseg evaluate: scored against a reference TIFF, each is a perfect match
    write(plain, tmp_path / "gt" / "s.tif")
    for folder in ("plain", "ome"):
        report = tmp_path / f"eval-{folder}"
        pair = ["--pred", str(tmp_path / folder), "--gt", str(tmp_path / "gt")]
        assert main(["evaluate", *pair, "--format", "labelmap", "-o", str(report), "--no-plot"]) == 0
        summary = json.loads((report / "summary.json").read_text())
        assert [case["case"] for case in summary["metric_per_case"]] == ["s"]
        metrics = summary["metric_per_case"][0]["metrics"]
        assert metrics and all(m["Dice"] == 1.0 for m in metrics.values())


def test_save_probabilities_with_block_shape_writes_a_probability_store(run_dir, tmp_path):
    rng = np.random.default_rng(3)
    stack = write(Volume(rng.random((1, 3, 40, 48), dtype=np.float32)), tmp_path / "s.tif")
    base = ["predict", "-m", str(run_dir), "-i", str(stack), "--no-progress", "--save-probabilities"]
    assert main([*base, "-o", str(tmp_path / "memory")]) == 0
    assert main([*base, "-o", str(tmp_path / "blocks"), "--block-shape", "1", "32", "32"]) == 0
    assert sorted(p.name for p in (tmp_path / "blocks").iterdir()) == ["s.zarr", "s_probabilities.zarr"]
    in_memory = read(tmp_path / "memory" / "s_probabilities.tif").array
    blocks = read(tmp_path / "blocks" / "s_probabilities.zarr").array
    assert blocks.shape == in_memory.shape == (2, 3, 40, 48)
    np.testing.assert_allclose(blocks, in_memory, atol=1e-5)
    np.testing.assert_array_equal(read(tmp_path / "blocks" / "s.zarr").array[0], blocks.argmax(0))
