"""The built wheel, installed in a fresh venv and run from another folder, finds its files."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_installed_wheel_finds_scenarios_and_styles(tmp_path: Path) -> None:
    uv = shutil.which("uv")
    assert uv, "uv is needed to build the wheel"
    subprocess.run(
        [uv, "build", "--wheel", "--out-dir", str(tmp_path / "dist"), str(ROOT)],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp_path / "dist").glob("broker_sim-*.whl"))
    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--python", sys.executable, str(venv)], check=True, capture_output=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "--python", str(python), str(wheel)], check=True, capture_output=True
    )
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    code = (
        "from broker_sim.resources import builtin_scenarios_dir, styles_dir\n"
        "from broker_sim.domain.scenario_file import load_scenarios\n"
        "s = builtin_scenarios_dir(); print(s)\n"
        "print(len(load_scenarios(s)))\n"
        "print(sorted(p.name for p in styles_dir().glob('*.tcss')))\n"
    )
    done = subprocess.run(
        [str(python), "-c", code], cwd=elsewhere, capture_output=True, text=True, check=True
    )
    folder, count, styles = done.stdout.splitlines()
    assert "site-packages" in folder
    assert count == str(len(list((ROOT / "simulations").glob("*.toml"))))  # every built-in shipped
    assert styles != "[]"
    cli = subprocess.run(
        [str(venv / "bin" / "broker-sim"), "--help"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "broker-sim" in cli.stdout
