"""``python -m engine.options --markdown`` prints the README's option table; ``--schema`` the spec JSON Schema."""

from __future__ import annotations

import argparse

from engine.options.table import readme_block
from engine.request.schema import schema_text


def main(argv: list[str] | None = None) -> int:
    """Print the generated option table (``--markdown``) or spec JSON Schema (``--schema``)."""
    parser = argparse.ArgumentParser(prog="python -m engine.options", description=__doc__)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--markdown", action="store_true", help="the README's option table (between its options markers)")
    what.add_argument("--schema", action="store_true", help="the JSON Schema of spec files")
    args = parser.parse_args(argv)
    if args.markdown:
        print(readme_block(), end="")
    else:
        print(schema_text(), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
