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


# -- the lists README keeps of the package's data: written from the package, never by hand ---------------

#: a block README keeps between ``<!-- NAME: ... -->`` and ``<!-- /NAME -->``
_BLOCK = re.compile(r"(<!-- (\w+): [^\n]*-->\n)(.*?)(<!-- /\2 -->)", re.S)


def _names(block: str) -> list[str]:
    """The names the package has for one README block: model types, presets or devices."""
    if block == "families":
        from engine.catalog.families import FAMILIES

        return list(FAMILIES)
    if block == "presets":
        from engine.catalog.presets import PRESETS

        return list(PRESETS)
    if block == "devices":
        from engine.catalog.hardware import device_names

        return device_names()
    raise KeyError(f"README names a block {block!r}; this file writes families, presets and devices")


def _listed(names: list[str], width: int = 110) -> str:
    """``names`` as a Markdown paragraph of code spans, ``width`` characters a line at most."""
    lines, line = [], ""
    for i, name in enumerate(names):
        word = f"`{name}`" + ("," if i < len(names) - 1 else ".")
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    return "\n".join([*lines, line]) + "\n"


def written(text: str) -> str:
    """README ``text`` with each block's list written from the package."""
    return _BLOCK.sub(lambda m: m.group(1) + _listed(_names(m.group(2))) + m.group(4), text)


def test_readme_lists_the_model_types_presets_and_devices_the_package_has():
    text = (REPO / "README.md").read_text()
    blocks = [m.group(2) for m in _BLOCK.finditer(text)]
    assert sorted(blocks) == ["devices", "families", "presets"], blocks
    for m in _BLOCK.finditer(text):  # the same names, in the package's order
        assert re.findall(r"`([^`]+)`", m.group(3)) == _names(m.group(2)), \
            f"README's {m.group(2)} differ from the package's: run python tests/test_readme.py"
    assert text == written(text), "README's lists are not as written: run python tests/test_readme.py"


def test_readme_counts_the_model_types_and_presets():
    from engine.catalog.families import FAMILIES
    from engine.catalog.presets import PRESETS

    text = (REPO / "README.md").read_text()
    assert f"Beyond it: {len(FAMILIES)} Hugging Face model types and {len(PRESETS)} named models" in text


# -- README's layout: the tree it draws is the package's ------------------------------------------------

def _layout() -> list[tuple[Path, list[str]]]:
    """(folder, names) of each entry of README's layout tree: the names (``a.py, b/``) an entry line starts
    with, resolved against the folder its indentation puts it in, and the ``.py`` files its description
    names (``base.py (Quantity, FormulaSet)``), resolved against the entry (a folder) or its folder."""
    text = (REPO / "README.md").read_text()
    tree = re.search(r"## Layout\n.*?```\n(.*?)```", text, re.S).group(1)
    entries: list[tuple[Path, list[str]]] = []
    parents: list[tuple[int, Path]] = []  # (indent, folder) of the open folders
    base = REPO
    for line in tree.splitlines():
        indent = len(line) - len(line.lstrip(" "))
        head, _, description = line.strip().partition("  ")
        if indent >= 12 or not head:  # a description's continuation
            entries.append((base, re.findall(r"\b\w+\.py\b", line)))
            continue
        while parents and parents[-1][0] >= indent:
            parents.pop()
        folder = parents[-1][1] if parents else REPO
        names = [n.strip() for n in head.split(",") if n.strip()]
        entries.append((folder, names))
        base = folder / names[0] if names[0].endswith("/") else (folder / names[0]).parent
        if names[0].endswith("/"):
            parents.append((indent, base))
        entries.append((base, re.findall(r"\b\w+\.py\b", description)))
    return entries


def test_readme_layout_names_only_what_exists():
    missing = [str((folder / name).relative_to(REPO)) for folder, names in _layout() for name in names
               if not (folder / name.rstrip("/")).exists()]
    assert not missing, f"README's layout names what the tree lacks: {missing}"


def test_readme_layout_names_every_package():
    named = {(folder / name.rstrip("/")).resolve() for folder, names in _layout() for name in names}
    packages = [p.parent for p in sorted((REPO / "engine").rglob("*/__init__.py"))]  # engine/ is the tree itself
    unnamed = [str(p.relative_to(REPO)) for p in packages if p.resolve() not in named]
    assert not unnamed, f"README's layout leaves out these packages: {unnamed}"


if __name__ == "__main__":  # write README's lists from the package
    readme = REPO / "README.md"
    readme.write_text(written(readme.read_text()))
