"""Running ``rabbitmqctl``: one way, one error type, for every caller in broker-sim."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path


class RabbitmqctlError(RuntimeError):
    """rabbitmqctl is missing, failed, or timed out; the message is its last line of output."""


def run_rabbitmqctl(
    *args: str,
    node: str | None = None,
    env: Mapping[str, str] | None = None,
    exe: Path | None = None,
    timeout: float = 60,
) -> str:
    """Run ``rabbitmqctl -q [-n NODE] ARGS…`` and return its standard output (blocking)."""
    program = str(exe) if exe is not None else shutil.which("rabbitmqctl")
    if program is None:
        raise RabbitmqctlError("rabbitmqctl is not installed")
    command = [program, "-q", *(["-n", node] if node else []), *args]
    try:
        done = subprocess.run(
            command,
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,  # never the TUI's terminal: keys typed there are the app's
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise RabbitmqctlError(f"rabbitmqctl {args[0]} did not answer within {timeout:g} s") from None
    except OSError as exc:
        raise RabbitmqctlError(f"rabbitmqctl could not run: {exc}") from None
    if done.returncode != 0:
        lines = (done.stderr or done.stdout).strip().splitlines()
        raise RabbitmqctlError(f"rabbitmqctl {args[0]} failed: {lines[-1] if lines else done.returncode}")
    return done.stdout
