"""examples/explore.ipynb runs headless (nbclient), so the notebook never rots, and leaves nothing behind."""

from __future__ import annotations

import subprocess
from pathlib import Path

import nbclient
import nbformat

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def _untracked(folder: Path) -> set[str]:
    """Files under ``folder`` that git does not track (ignored ones too): what a run could have left there."""
    out = subprocess.run(["git", "ls-files", "--others", "--", "."], cwd=folder, capture_output=True, text=True)
    return set(out.stdout.splitlines())


def test_the_explore_notebook_runs_and_shows_what_it_promises(tmp_path, monkeypatch):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))  # the kernel's tempfile folder: what it writes is seen here
    before = _untracked(EXAMPLES)
    nb = nbformat.read(EXAMPLES / "explore.ipynb", as_version=4)
    nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(EXAMPLES)}}).execute()  # raises on any cell error
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    text = "\n".join(str(o.get("text", "")) + str(o.get("data", {}).get("text/plain", "")) for o in outputs)
    assert "10,240,000,000 points of mem_peak" in text  # the virtual cube opened
    assert "largest seq_len" in text or "seq_len" in text  # the frontier
    figures = [o for o in outputs if "image/png" in o.get("data", {})]
    assert len(figures) == 2  # the heatmap and the frontier
    assert any("text/latex" in o.get("data", {}) for o in outputs)  # a formula in LaTeX
    # it cleans up what it writes: its cube (8 MB) went into a temporary folder that the last cell removed
    assert f"removed {scratch}" in text
    assert not [p.name for p in scratch.iterdir() if p.name.startswith("llm-sweep-notebook-")]
    assert _untracked(EXAMPLES) == before
