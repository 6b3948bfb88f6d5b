"""Shared fixtures: small specs written to a temporary folder, and the command line in-process."""

from __future__ import annotations

import subprocess
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

SMALL_SPEC = """
[sweep]
formula_set = "seed"
quantities = ["params_total", "params_layer", "mem_peak", "mem_activations", "perf_relative"]

[fixed]
vocab = 50000

[axes]
d_model = [512, 768, 1024]
n_layers = { start = 6, stop = 24, step = 6 }
batch = { start = 1, stop = 8, scale = "log2" }
seq_len = [256, 1024]
"""


@pytest.fixture
def write_spec(tmp_path):
    """Write TOML text to a file in a temporary folder and return its path."""

    def write(text: str, name: str = "spec.toml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture
def small_spec(write_spec) -> Path:
    return write_spec(SMALL_SPEC)


@pytest.fixture
def run_cli(capsys, monkeypatch):
    """``engine.cli.main`` in this process, answered like ``subprocess.run``: returncode, stdout, stderr.

    argparse's usage errors (and ``--version``) raise ``SystemExit``; its code is the exit status.
    No persistent XLA cache is configured in the test process (LLM_SWEEP_CACHE_DIR is empty).
    A few tests still start the console script itself (tests/test_cli.py).
    """
    monkeypatch.setenv("LLM_SWEEP_CACHE_DIR", "")

    def call(*args, cwd=None) -> subprocess.CompletedProcess:
        from engine.cli import main

        argv = [str(a) for a in args]
        capsys.readouterr()  # drop anything printed before the command
        with monkeypatch.context() as m:
            if cwd is not None:
                m.chdir(cwd)
            try:
                code = main(argv)
            except SystemExit as exc:
                code = exc.code
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["llm-sweep", *argv], code, out, err)

    return call
