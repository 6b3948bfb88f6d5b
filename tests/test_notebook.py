"""examples/explore.ipynb runs headless (nbclient), so the notebook never rots."""

from __future__ import annotations

from pathlib import Path

import nbclient
import nbformat

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def test_the_explore_notebook_runs_and_shows_what_it_promises():
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
