"""Check a text's numbers: recompute each claimed value from a formula set (pure sympy).

A claims file (TOML) records what a text states and how to recompute it::

    formula_set = "seed"
    source = "seed article"
    [values]                        # inputs shared by every claim (a claim's own values win)
    d_model = 768
    [[claim]]
    claim = "Feed-Forward Network: 2 * 768 * (4 * 768) + 768 + (4 * 768) = 4,719,616"
    claimed = 4719616               # a number, or an expression string
    expr = "params_ffn"             # quantities and inputs of the set: + - * / ** ( ), engine/symbolic/expr.py
    values = { d_model = 768 }      # optional, merged over [values]
    options = { tied_head = false } # optional structural options of the set
    abs_tol = 0                     # optional; "about 494 MB" -> 500000 (half the last digit)
    rel_tol = 0                     # optional relative tolerance
    note = "..."                    # optional: the correct version, shown when the claim fails

A claim holds when |derived - claimed| <= max(abs_tol, rel_tol * |claimed|); with neither
tolerance it must hold exactly (derived values are exact rationals).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import sympy

from engine.errors import SpecError, check_keys, did_you_mean, read_user_file
from engine.symbolic.expr import MAX_DIGITS, ExpressionError, parse_expression
from engine.symbolic.formulas import FORMULA_SETS, FormulaSet, build_formula_set, exact_number
from engine.symbolic.symbols import SYMBOLS

FILE_KEYS = ("formula_set", "source", "values", "claim")
CLAIM_KEYS = ("claim", "claimed", "expr", "values", "options", "abs_tol", "rel_tol", "note")


@dataclass(frozen=True)
class Claim:
    """One recorded claim and its verdict (after ``check_claims``).

    Parameters
    ----------
    claim : str
        What the text states, in its words.
    claimed : sympy.Expr
        The number it states, exact.
    derived : sympy.Expr
        The number the formula set gives, exact.
    ok : bool
        Whether they agree within the claim's tolerance.
    note : str, optional
        The correct version, shown when the claim fails.
    """

    claim: str
    claimed: sympy.Expr
    derived: sympy.Expr
    ok: bool
    note: str = ""

    def as_json(self) -> dict[str, Any]:
        """The claim as JSON.

        Returns
        -------
        dict
            ``{claim, claimed, derived, ok}`` with plain JSON numbers (integers stay exact).
        """
        return {"claim": self.claim, "claimed": _plain(self.claimed), "derived": _plain(self.derived), "ok": self.ok}


def load_claims(path: str | Path) -> tuple[str, list[Claim]]:
    """Read a claims file (TOML, the format of the module docstring) and check every claim.

    Parameters
    ----------
    path : str or Path
        The claims file.

    Returns
    -------
    tuple
        (the checked text's name: the file's ``source``, else its path; the claims with their verdicts).

    Raises
    ------
    SpecError
        A missing, unreadable or malformed file, or a claim that cannot be recomputed; names the file
        and the key (``claim[3].expr``).
    """
    source = str(path)
    _, data = read_user_file(path, "TOML")
    return data.get("source", source), check_claims(data, source)


def check_claims(data: Mapping[str, Any], source: str = "<claims>") -> list[Claim]:
    """Recompute every claim of ``data`` (the parsed claims file) and give its verdict.

    Parameters
    ----------
    data : Mapping
        The parsed claims file.
    source : str, optional
        How errors name it.

    Returns
    -------
    list of Claim
        One per ``[[claim]]``, in order.

    Raises
    ------
    SpecError
        An unknown key, formula set or input (with the closest valid name), a malformed value, or an
        expression that cannot be evaluated at the given values; names the key (``claim[3].expr``).
    """
    check_keys(source, "", data, FILE_KEYS)
    name = data.get("formula_set")
    if name not in FORMULA_SETS:
        raise SpecError(source, "formula_set", f"must be one of {', '.join(FORMULA_SETS)}, got {name!r}"
                                               f"{did_you_mean(name, FORMULA_SETS)}")
    shared = data.get("values", {})
    if not isinstance(shared, Mapping):
        raise SpecError(source, "values", "must be a table of input = value")
    entries = data.get("claim")
    if not isinstance(entries, list) or not entries:
        raise SpecError(source, "claim", "no claims; add [[claim]] tables")
    return [_check_one(source, name, shared, i, entry) for i, entry in enumerate(entries)]


def _check_one(source: str, name: str, shared: Mapping, index: int, entry: Any) -> Claim:
    where = f"claim[{index}]"
    if not isinstance(entry, Mapping):
        raise SpecError(source, where, "must be a table")
    check_keys(source, where, entry, CLAIM_KEYS)
    for key in ("claim", "claimed", "expr"):
        if key not in entry:
            raise SpecError(source, where, f"missing {key!r}")
    for key in ("options", "values"):
        if not isinstance(entry.get(key, {}), Mapping):
            raise SpecError(source, f"{where}.{key}", "must be a table of " + (
                "structural options, e.g. { tied_head = false }" if key == "options" else "input = value"))
    try:
        formulas = build_formula_set(name, dict(entry.get("options", {})))
    except ValueError as exc:
        raise SpecError(source, f"{where}.options", str(exc)) from None
    values = {**shared, **entry.get("values", {})}
    for key, value in values.items():
        if key not in SYMBOLS:
            raise SpecError(source, f"{where}.values.{key}", f"unknown input; valid inputs: {', '.join(SYMBOLS)}"
                                                             f"{did_you_mean(key, SYMBOLS)}")
        values[key] = _input_value(source, f"{where}.values.{key}", key, value)
    derived = _evaluate(source, f"{where}.expr", formulas, entry["expr"], values)
    claimed_raw = entry["claimed"]
    if isinstance(claimed_raw, str):
        claimed = _evaluate(source, f"{where}.claimed", formulas, claimed_raw, values)
    elif isinstance(claimed_raw, (int, float)) and not isinstance(claimed_raw, bool):
        if not math.isfinite(claimed_raw):  # TOML nan, inf, and 1e400 (read as inf)
            raise SpecError(source, f"{where}.claimed", f"must be a finite number, got {claimed_raw!r}; a number "
                                                        "beyond a float's range is written as an expression string, "
                                                        'e.g. "10**400"')
        claimed = exact_number(claimed_raw)
    else:
        raise SpecError(source, f"{where}.claimed", f"must be a number or an expression string, got {claimed_raw!r}")
    tol = sympy.Integer(0)
    for key in ("abs_tol", "rel_tol"):
        t = entry.get(key, 0)
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t) or t < 0:
            raise SpecError(source, f"{where}.{key}", f"must be a non-negative finite number, got {t!r}")
        scale = 1 if key == "abs_tol" else abs(claimed)
        tol = sympy.Max(tol, exact_number(t) * scale)
    ok = bool(abs(derived - claimed) <= tol)
    return Claim(str(entry["claim"]), claimed, derived, ok, str(entry.get("note", "")))


def _input_value(source: str, key: str, name: str, value: Any) -> int | float:
    """A claim's value of input ``name``, as a spec takes it: integer inputs (sizes, counts) a whole number
    of at least the input's minimum (768.0 is read as 768; 768.5 is refused: a fractional count), the rest
    a positive finite number."""
    info = SYMBOLS[name]
    number = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if not number or (value != int(value) or value < info.minimum if info.integer else value <= 0):
        raise SpecError(source, key, f"{name} must be {info.kind}, got {value!r}")
    return int(value) if info.integer else value


def _evaluate(source: str, key: str, formulas: FormulaSet, text: Any, values: Mapping) -> sympy.Expr:
    if not isinstance(text, str) or not text.strip():
        raise SpecError(source, key, "must be an expression string over quantities and inputs")
    # Only arithmetic over known names: a claims file is data, never code to run.
    names = {q.name: q.symbol for q in formulas.quantities.values()}
    names.update({n: i.symbol for n, i in SYMBOLS.items() if n not in names})
    try:
        expr = parse_expression(text, names)
    except ExpressionError as exc:
        raise SpecError(source, key, str(exc)) from None
    inlined = formulas.inline(expr)
    # Size first, in floats: an exact power of the given values (d_model**d_model at 1e9) would
    # never finish; the float estimate answers at once.
    approx = formulas.apply(inlined, set(values)).xreplace(
        {SYMBOLS[k].symbol: sympy.Float(v) for k, v in values.items() if k in SYMBOLS})
    if approx.is_number and approx.is_finite is not False:
        try:
            too_big = bool(sympy.Abs(approx) > sympy.Float(10) ** MAX_DIGITS)
        except TypeError:  # not comparable (complex): said below
            too_big = False
        if too_big:
            raise SpecError(source, key, f"{text!r} has more than {MAX_DIGITS} digits at the given values")
    value = formulas.apply(inlined, values)
    if value.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo) or value.is_real is False:
        raise SpecError(source, key, f"{text!r} is not a finite real number at the given values "
                                     f"(division by zero?): it evaluates to {value}")
    if value.is_Rational and max(abs(value.p).bit_length(), value.q.bit_length()) > MAX_DIGITS * 3.33:
        raise SpecError(source, key, f"{text!r} has more than {MAX_DIGITS} digits at the given values")
    if value.free_symbols:
        missing = ", ".join(sorted(s.name for s in value.free_symbols))
        raise SpecError(source, key, f"needs a value for {missing}: give it in the claim's values or [values]")
    return sympy.nsimplify(value) if value.is_Float else value


def _plain(value: sympy.Expr) -> int | float:
    if value.is_Integer:
        return int(value)
    return float(value)


def format_value(value: sympy.Expr) -> str:
    """A claimed or derived value for a table: exact integers with separators, else 4 digits."""
    if value.is_Integer:
        return f"{int(value):,}"
    v = float(value)
    if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
        return f"{v:.4g}"
    return f"{v:,.4g}" if abs(v) >= 1e4 else f"{v:.4g}"
