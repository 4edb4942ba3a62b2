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
    for name in ("demo", "fetch", "train", "predict", "evaluate", "run", "bench"):
        assert name in out


def test_every_subcommand_has_help():
    parser = build_parser()
    for name in ("demo", "fetch", "train", "predict", "evaluate", "run", "bench"):
        assert name in parser._subparsers._group_actions[0].choices
    assert len(SUBCOMMANDS) == 7


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
