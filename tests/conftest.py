"""Shared fixtures: small specs written to a temporary folder, the command line in-process, and the checks that
several test modules make of its answers (one line of error, no temporary file left)."""

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


TINY_SPEC = """
[sweep]
formula_set = "seed"
quantities = ["params_total", "mem_peak"]
{extra}
[fixed]
vocab = {vocab}
[axes]
d_model = [256, 512, 768, 1024]
n_layers = [2, 4]
batch = [1, 2]
seq_len = [128, 256]
"""


@pytest.fixture
def tiny():
    """Write a 32-point seed spec (params_total, mem_peak) into a folder and return its path."""

    def write(folder: Path, name: str = "spec.toml", vocab: int = 50000, extra: str = "") -> Path:
        path = folder / name
        path.write_text(TINY_SPEC.format(vocab=vocab, extra=extra))
        return path

    return write


@pytest.fixture
def run_parts(tmp_path, tiny, run_cli):
    """Run a tiny spec as two parts (``--part 0/2`` and ``1/2``) in tmp_path and return the two part files."""

    def run(name: str, vocab: int = 50000, precision: str | None = None) -> list[Path]:
        spec = tiny(tmp_path, f"{name}.toml", vocab)
        paths = []
        for i in (0, 1):
            extra = ["--precision", precision] if precision else []
            assert run_cli("run", spec, "--part", f"{i}/2", "--quiet", "-o", tmp_path / f"{name}.nc",
                           *extra).returncode == 0
            paths.append(tmp_path / f"{name}.part00{i}-of-002.nc")
        return paths

    return run


@pytest.fixture
def temps():
    """The temporary files (``.*.tmp``) left in a folder, sorted by name."""

    def names(folder: Path) -> list[str]:
        return sorted(p.name for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(".tmp"))

    return names


@pytest.fixture
def one_line_error():
    """Assert that stderr is one line and no traceback; return the line."""

    def line(err: str) -> str:
        lines = err.strip().splitlines()
        assert len(lines) == 1, err
        assert "Traceback" not in err
        return lines[0]

    return line


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
    Tests start the console script itself only where a signal or a fresh process is what they test.
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


@pytest.fixture
def step_time_kernel_matches_sympy(write_spec):
    """Check that a step-time sweep's compiled kernel gives, at every tp x pp of the grid, what sympy computes
    exactly from the same formulas (a100-80gb's values, bf16, the Korthikanti memory model, ``options`` on top)."""
    from engine.catalog.hardware import device
    from engine.catalog.model import architecture
    from engine.options import show_value
    from engine.request.spec import load_spec
    from engine.runtime.sweep import run

    def check(arch: str, options: dict, fixed: dict, tps: tuple, pps: tuple, quantities=("step_time",)) -> None:
        dev = device("a100-80gb").values("bf16")
        given = {**dev, **fixed}
        opts = {"memory_model": "korthikanti", "precision": "bf16", "attention": "flash", **options}
        text = (f"[sweep]\narch = {arch!r}\nquantities = {list(quantities)!r}\n[options]\n"
                + "".join(f"{k} = {show_value(v)}\n" for k, v in opts.items())
                + "[fixed]\n" + "".join(f"{k} = {v!r}\n" for k, v in given.items())
                + f"[axes]\ntp = {list(tps)!r}\npp = {list(pps)!r}\n")
        req = load_spec(write_spec(text, "step_time.toml"))
        ds = run(req).dataset
        values = architecture(arch).values
        for tp in tps:
            for pp in pps:
                want = float(req.formulas.evaluate_exact("step_time", {**values, **given, "tp": tp, "pp": pp}))
                assert ds["step_time"].sel(tp=tp, pp=pp).item() == pytest.approx(want, rel=1e-12)

    return check
