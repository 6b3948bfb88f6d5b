"""``python -m engine.options --markdown`` prints the README's option table; ``--schema`` the spec JSON Schema."""

from __future__ import annotations

import argparse
import json

from engine.options.table import markdown_table
from engine.request.schema import spec_schema


def main(argv: list[str] | None = None) -> int:
    """Print the generated option table (``--markdown``) or spec JSON Schema (``--schema``)."""
    parser = argparse.ArgumentParser(prog="python -m engine.options", description=__doc__)
    what = parser.add_mutually_exclusive_group(required=True)
    what.add_argument("--markdown", action="store_true", help="the README's option table")
    what.add_argument("--schema", action="store_true", help="the JSON Schema of spec files")
    args = parser.parse_args(argv)
    if args.markdown:
        print(markdown_table(), end="")
    else:
        print(json.dumps(spec_schema(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
