"""README opens with the two commands, and .ci/run runs the test command verbatim."""

from __future__ import annotations

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _commands():
    text = (REPO / "README.md").read_text()
    return re.findall(r"```sh\n(.+?)\n```", text)[:2]


def test_readme_opens_with_the_two_commands():
    run_cmd, test_cmd = _commands()
    assert "llm-sweep run sweeps/seed.toml" in run_cmd and "pip install -e ." in run_cmd
    assert "pytest" in test_cmd and "'.[test]'" in test_cmd


def test_ci_runs_the_readme_test_command_verbatim():
    _, test_cmd = _commands()
    lines = (REPO / ".ci" / "run").read_text().splitlines()
    assert test_cmd in lines


def test_readme_claims_match_the_checker():
    from engine.symbolic.claims import load_claims

    _, claims = load_claims(REPO / "sweeps" / "seed-claims.toml")
    text = (REPO / "README.md").read_text()
    wrong = sum(not c.ok for c in claims)
    assert f"lists all {len(claims)} of" in text and f"the {wrong} that are wrong" in text
