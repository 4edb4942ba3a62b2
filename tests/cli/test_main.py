from __future__ import annotations

import subprocess
import sys

import pytest

import medseg
from medseg.cli.main import SUBCOMMANDS, build_parser, main


def test_version_and_help(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"medseg {medseg.__version__}"
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    for name in ("demo", "fetch", "train", "predict", "evaluate", "run", "bench", "export"):
        assert name in out


def test_every_subcommand_has_help():
    parser = build_parser()
    for name in ("demo", "fetch", "train", "predict", "evaluate", "run", "bench", "export"):
        assert name in parser._subparsers._group_actions[0].choices
    assert len(SUBCOMMANDS) == 8


def test_medseg_errors_exit_2_with_a_message(tmp_path, capsys):
    code = main(["demo", "--out", str(tmp_path), "--set", "train.iterationz=3"])
    assert code == 2
    err = capsys.readouterr().err
    assert "medseg demo: error:" in err and "unknown key 'train.iterationz'" in err
    assert not (tmp_path / "metrics.json").exists()


def test_console_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "medseg", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0 and medseg.__version__ in result.stdout


def _boom(exc: BaseException):
    def run(args):
        raise exc

    return run


@pytest.mark.parametrize(
    ("exc", "status", "line"),
    [
        (
            FileExistsError(17, "File exists", "/x/out"),
            2,
            "medseg demo: error: /x/out: File exists: it already exists; remove it or choose another path",
        ),
        (
            OSError(28, "No space left on device", "/x/out.h5"),
            2,
            "medseg demo: error: /x/out.h5: No space left on device: no space left on the device; "
            "free some space or choose another output folder",
        ),
        (
            RuntimeError("kaputt\nsecond line"),
            1,
            "medseg demo: error: internal error RuntimeError: kaputt second line (run with --debug for the traceback)",
        ),
    ],
)
def test_errors_become_one_line_and_a_status(monkeypatch, capsys, tmp_path, exc, status, line):
    monkeypatch.setattr("medseg.cli.demo.run", _boom(exc))
    monkeypatch.delenv("MEDSEG_DEBUG", raising=False)
    assert main(["demo", "--out", str(tmp_path / "o")]) == status
    err = capsys.readouterr().err
    assert err.splitlines() == [line]


def test_pydantic_errors_name_the_field(monkeypatch, capsys, tmp_path):
    from medseg.config import InferConfig

    def run(args):
        InferConfig.model_validate({"overlap": 1.5})

    monkeypatch.setattr("medseg.cli.demo.run", run)
    assert main(["demo", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        "medseg demo: error: invalid InferConfig value: 'overlap': Input should be less than 1 (got 1.5)"
    ]


@pytest.mark.parametrize("how", [["--debug", "demo"], ["demo", "--debug"], ["demo"]])
def test_debug_shows_the_traceback(monkeypatch, capsys, tmp_path, how):
    monkeypatch.setattr("medseg.cli.demo.run", _boom(RuntimeError("kaputt")))
    if how == ["demo"]:
        monkeypatch.setenv("MEDSEG_DEBUG", "1")
    assert main([*how, "--out", str(tmp_path / "o")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "RuntimeError: kaputt" in err
    assert err.splitlines()[-1] == "medseg demo: error: internal error RuntimeError: kaputt"


def test_interrupt_exits_130(monkeypatch, capsys, tmp_path):
    monkeypatch.setattr("medseg.cli.demo.run", _boom(KeyboardInterrupt()))
    assert main(["demo", "--out", str(tmp_path / "o")]) == 130
    assert capsys.readouterr().err.splitlines() == ["medseg demo: interrupted"]


def test_a_bad_yaml_override_in_a_subprocess_prints_no_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "medseg", "demo", "--out", str(tmp_path / "o"), "--set", "train.seed=[1,"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith("medseg demo: error: --set train.seed is not valid YAML")
    assert not (tmp_path / "o").exists()
