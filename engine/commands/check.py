"""``llm-sweep check``: recompute the numbers a text claims; exit 1 if any is wrong."""

from __future__ import annotations

import argparse
import json

from engine.commands.common import EXIT_CLAIM_WRONG, EXIT_OK


def add_parser(subparsers) -> None:
    """Declare ``check`` and its flags."""
    c = subparsers.add_parser("check", help="recompute the numbers a text claims",
                              description="Recompute every claim of a claims file; exit 1 if any is wrong.")
    c.add_argument("claims", help="claims file (TOML), e.g. sweeps/seed-claims.toml")
    c.add_argument("--json", action="store_true", help="print a JSON list of {claim, claimed, derived, ok}")


def main(args: argparse.Namespace) -> int:
    """Print each claim's verdict; 0 when all hold, 1 when one is wrong."""
    from engine.symbolic.claims import format_value, load_claims

    source, claims = load_claims(args.claims)
    if args.json:
        print(json.dumps([c.as_json() for c in claims], indent=2))
    else:
        wrong = [c for c in claims if not c.ok]
        print(f"Claims of {source}: {len(claims) - len(wrong)} hold, {len(wrong)} wrong")
        rows = [("verdict", "claimed", "derived", "claim")]
        rows += [("ok" if c.ok else "WRONG", format_value(c.claimed), format_value(c.derived), c.claim) for c in claims]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for r in rows:
            print(f"{r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]}")
        if wrong:
            print("\nWhat is wrong:")
            for c in wrong:
                print(f"- {c.claim}\n    claimed {format_value(c.claimed)}, derived {format_value(c.derived)}"
                      + (f"; {c.note}" if c.note else ""))
    return EXIT_OK if all(c.ok for c in claims) else EXIT_CLAIM_WRONG
