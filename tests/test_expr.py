"""The safe expression reader (engine/symbolic/expr.py) and every place user text becomes a formula."""

from __future__ import annotations

import time

import pytest
import sympy
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli import main
from engine.symbolic.expr import MAX_DEPTH, MAX_LENGTH, ExpressionError, parse_expression, parse_number
from engine.request.query import parse_constraint
from engine.symbolic.symbols import SYMBOLS

X, Y = sympy.symbols("x y", positive=True)
NAMES = {"x": X, "y": Y}
INPUTS = {n: i.symbol for n, i in SYMBOLS.items()}
D, ALPHA = SYMBOLS["d_model"].symbol, SYMBOLS["alpha"].symbol


def parse(text, names=NAMES):
    return parse_expression(text, names)


# -- accepted forms ------------------------------------------------------------------------------
@pytest.mark.parametrize("text,expected", [
    ("12", 12),
    ("0", 0),
    ("0.1", sympy.Rational(1, 10)),  # exact, as the text reads: never the binary float
    ("1.5", sympy.Rational(3, 2)),
    (".5", sympy.Rational(1, 2)),
    ("5.", 5),
    ("1e9", 10**9),
    ("1E+9", 10**9),
    ("2.5e-3", sympy.Rational(1, 400)),
    ("1.1e9", 1_100_000_000),
    ("0e999999999", 0),
    ("1 + 2 * 3", 7),
    ("(1 + 2) * 3", 9),
    ("7 - 2 - 1", 4),
    ("8 / 4 / 2", 1),
    ("2 / 3", sympy.Rational(2, 3)),
    ("-2**2", -4),  # Python precedence: -(2**2)
    ("(-2)**2", 4),
    ("2**-1", sympy.Rational(1, 2)),
    ("2**3**2", 512),  # right-associative
    ("2**2**6", 2**64),
    ("+3", 3),
    ("--3", 3),
    ("  1 +\t2\n", 3),
    ("2**64", 2**64),
    ("2**-64", sympy.Rational(1, 2**64)),
    ("sqrt(16)", 4),
    ("log(8, 2)", 3),
    ("exp(0)", 1),
    ("min(3, 1, 2)", 1),
    ("max(3, 1, 2)", 3),
    ("Min(3, 1)", 1),
    ("Max(3, 1)", 3),
    ("ceiling(7/2)", 4),
    ("ceil(7/2)", 4),
    ("floor(7/2)", 3),
    ("Abs(-3)", 3),
    ("abs(-3)", 3),
    ("ceiling(exp(20))", 485165196),
])
def test_constants(text, expected):
    assert parse(text) == sympy.sympify(expected)
    assert parse_number(text) == sympy.sympify(expected)


@pytest.mark.parametrize("text,expected", [
    ("x", X),
    ("x*y + 2", X * Y + 2),
    ("8*x/3", 8 * X / 3),
    ("x**2", X**2),
    ("x**0.5", sympy.sqrt(X)),
    ("x**0.0761", X ** sympy.Rational(761, 10000)),
    ("2**(x + 100)", 2 ** (X + 100)),
    ("10**(1/y)", 10 ** (1 / Y)),  # a symbolic exponent is fine
    ("sqrt(x)", sympy.sqrt(X)),
    ("log(x)", sympy.log(X)),
    ("exp(x)", sympy.exp(X)),
    ("min(x, y)", sympy.Min(X, Y)),
    ("max(x, 4)", sympy.Max(X, 4)),
    ("ceiling(x/2)", sympy.ceiling(X / 2)),
    ("floor(x/2)", sympy.floor(X / 2)),
    ("Abs(x - y)", sympy.Abs(X - Y)),
    ("x/(y - 1)", X / (Y - 1)),  # zero only at some values: not a constant zero
])
def test_expressions_over_names(text, expected):
    assert parse(text) == expected


def test_names_resolve_to_the_callers_objects():
    assert parse("d_ff - 4*d_model", INPUTS) == SYMBOLS["d_ff"].symbol - 4 * D
    assert parse("2*q", {"q": X + 1}) == 2 * X + 2  # a name may stand for an expression
    assert parse("10**(1/alpha)", INPUTS) == 10 ** (1 / ALPHA)


def test_limits_are_inclusive():
    assert parse("1" + " " * (MAX_LENGTH - 1)) == 1
    depth = MAX_DEPTH - 1
    assert parse("(" * depth + "x" + ")" * depth) == X
    assert parse("-" * (MAX_DEPTH - 1) + "1") == (-1) ** (MAX_DEPTH - 1)


# -- refused forms -------------------------------------------------------------------------------
@pytest.mark.parametrize("text,token,message", [
    ("__import__('os').system('true')", "__import__", "unknown name __import__"),
    ("x.real", ".", "attribute access"),
    ("x[0]", "[", "subscripts"),
    ("'abc'", "'", "strings are not expressions"),
    ('"abc"', '"', "strings are not expressions"),
    ("lambda: 1", "lambda", "unknown name lambda"),
    ("1, 2", ",", "commas only separate a function's arguments"),
    ("x = 1", "=", "no '='"),
    ("x == 1", "=", "no '='"),
    ("1; 2", ";", "write one expression"),
    ("2^3", "^", "use ** for powers"),
    ("7 // 2", "//", "floor(a / b)"),
    ("7 % 2", "%", "valid: numbers, names"),
    ("x < 1", "<", "valid: numbers, names"),
    ("d_modle", "d_modle", "unknown name d_modle"),
    ("sin(x)", "sin", "valid functions: sqrt, log, exp"),
    ("eval(x)", "eval", "unknown name eval"),
    ("x(2)", "x", "x is not a function"),
    ("sqrt", "sqrt", "needs its arguments in parentheses"),
    ("sqrt(1, 2)", "sqrt", "sqrt takes 1 argument(s), got 2"),
    ("min()", ")", "unexpected ')'"),
    ("2 x", "x", "expected an operator"),
    ("((", "", "the expression ends early"),
    ("(1", "", "the expression ends early"),
    ("1)", ")", "unexpected ')'"),
    ("1 +", "", "the expression ends early"),
    ("", "", "empty expression"),
    ("   ", "", "empty expression"),
    ("1.2.3", ".3", "unexpected '.3'"),
    ("é", "é", "unexpected 'é'"),
    ("1/0", "/", "division by zero"),
    ("x/(2-2)", "/", "division by zero"),
    ("x/(y-y)", "/", "division by zero"),
    ("0**-1", "**", "division by zero"),
    ("log(0)", "log", "not finite"),
    ("log(4, 1)", "log", "division by zero"),
    ("sqrt(-1)", "sqrt", "not a real number"),
    ("2**65", "**", "the exponent 65 is too large"),
    ("2**-65", "**", "the exponent -65 is too large"),
    ("2**2**7", "**", "the exponent 128 is too large"),
    ("2**2**2**40", "**", "the exponent 1099511627776 is too large"),
    ("x**(10**9)", "**", "too large"),
    ("(10**64)**64", "**", "is too large"),
    ("x**1e-9", "**", "too fine a fraction"),
    ("sqrt(3*2.5**1e-9)", "**", "too fine a fraction"),  # sympy would power 2 by 999999999
    ("5**(1e9 - x)", "**", "too large"),  # a symbolic exponent's constants count too
    ("x**exp(1e9 - x)", "exp", "too large"),
    ("1e5000", "1e5000", "too large or too precise"),
    ("1e-5000", "1e-5000", "too large or too precise"),
    ("1e999999999999", "1e999999999999", "too large or too precise"),
    ("exp(100000)", "exp", "too large"),
    ("exp(exp(100))", "exp", "too large"),
    ("ceiling(exp(9000))", "ceiling", "too large"),
])
def test_refused(text, token, message):
    with pytest.raises(ExpressionError) as info:
        parse(text)
    err = info.value
    assert message in str(err), str(err)
    assert err.token == token and err.text == text
    assert f"at position {err.position} " in str(err)
    if token:
        assert text[err.position - 1:].startswith(token)
    assert "\n" not in str(err)


def test_unknown_name_lists_the_valid_ones():
    with pytest.raises(ExpressionError) as info:
        parse("4*d_modle", INPUTS)
    message = str(info.value)
    assert "unknown name d_modle at position 3" in message and "did you mean d_model?" in message
    assert "valid names: " + ", ".join(SYMBOLS) in message  # all of them, in registry order
    assert "sqrt, log, exp, min, max, ceiling, floor, Abs" in message


def test_too_long_and_too_deep():
    with pytest.raises(ExpressionError, match="characters long"):
        parse("1" + " " * MAX_LENGTH)
    with pytest.raises(ExpressionError, match="nests too deeply"):
        parse("(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH)
    with pytest.raises(ExpressionError, match="nests too deeply"):
        parse("-" * (MAX_DEPTH + 1) + "1")
    with pytest.raises(ExpressionError, match="nests too deeply"):
        parse("x" + "**x" * (MAX_DEPTH + 1))
    with pytest.raises(ExpressionError, match="nests too deeply"):
        parse("sqrt(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1))


@pytest.mark.parametrize("text", ["2**2**2**40", "9**9**9**9**9", "(2**64)**64**64", "x**2**2**40",
                                  "10**10**10", "1e999999999", "exp(exp(exp(1e9)))", "floor(exp(10**60))"])
def test_huge_numbers_are_refused_fast(text):
    t0 = time.perf_counter()
    with pytest.raises(ExpressionError):
        parse(text)
    assert time.perf_counter() - t0 < 0.5


def test_parse_number():
    assert parse_number("2**30*80") == 80 * 2**30
    assert parse_number("sqrt(2)") == sympy.sqrt(2)
    for text in ("nan", "inf", "-inf", "oo", "x", "1/0", ""):
        with pytest.raises(ExpressionError) as info:
            parse_number(text)
        if text.strip("-") in ("nan", "inf", "oo", "x"):
            assert "no names are valid here" in str(info.value)


def test_names_must_be_sympy_objects():
    assert parse("n + 1", {"n": 2}) == 3
    with pytest.raises(TypeError):
        parse("n", {"n": "__import__('os')"})  # a string is never read as code


# -- property: any text from the grammar's alphabet parses or is an ExpressionError, quickly -------
_PIECES = ["0", "1", "2", "7", "64", "65", "1e9", "1e400", "0.5", ".", "e", "x", "y", "z", "nan", "__import__",
           "+", "-", "*", "/", "**", "^", "//", "(", ")", ",", " ", "=", "'", "[", "]",
           "sqrt(", "log(", "exp(", "min(", "max(", "ceiling(", "floor(", "Abs(", "ceil(", "abs("]


def _check_quick(text):
    t0 = time.perf_counter()
    try:
        value = parse(text)
    except ExpressionError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(value, sympy.Basic)
        assert not value.has(sympy.nan, sympy.zoo, sympy.oo, -sympy.oo)
    assert time.perf_counter() - t0 < 2.0, text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(_PIECES), max_size=40).map("".join))
def test_grammar_pieces_parse_or_raise_expression_error(text):
    _check_quick(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(alphabet="0123456789.eExy+-*/^(),= _'", max_size=60))
def test_grammar_characters_parse_or_raise_expression_error(text):
    _check_quick(text)


# -- the places user text becomes a formula --------------------------------------------------------
def _one_line_error(capsys, argv) -> str:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert err.strip() and "\n" not in err.strip(), err
    assert "Traceback" not in err
    return err


def test_substitute_injection_does_not_run(tmp_path, capsys):
    marker = tmp_path / "pwned"
    payload = f"d_ff=__import__('pathlib').Path({str(marker)!r}).touch() or 4*d_model"
    err = _one_line_error(capsys, ["formulas", "--substitute", payload])
    assert not marker.exists()
    assert "--substitute" in err and "unknown name __import__" in err


@pytest.mark.parametrize("item,message", [
    ("d_ff=2**2**2**40", "too large"),
    ("d_ff=1/0", "division by zero"),
    ("d_ff=4*d_modle", "unknown name d_modle"),
    ("d_ff=4*d_model^2", "use ** for powers"),
])
def test_substitute_refusals(capsys, item, message):
    t0 = time.perf_counter()
    err = _one_line_error(capsys, ["formulas", "--substitute", item])
    assert message in err and time.perf_counter() - t0 < 5
    if "d_modle" in item:
        assert ", ".join(SYMBOLS) in err


def test_substitute_still_works(capsys):
    assert main(["formulas", "--substitute", "d_ff=8*d_model/3", "--substitute", "vocab=0.5e5"]) == 0
    out = capsys.readouterr().out
    assert "d_model" in out and "50000" in out


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1/0", "1e400", "__import__('os')", "GiB"])
def test_where_thresholds_refused(tmp_path, capsys, small_spec, value):
    err = _one_line_error(capsys, ["run", small_spec, "--where", f"mem_peak <= {value}", "--over", "batch",
                                   "-o", tmp_path / "out.nc"])
    assert repr(value) in err or value in err
    assert not (tmp_path / "out.nc").exists()


@pytest.mark.parametrize("text,value", [
    ("mem_peak <= 80GiB", 80 * 2**30),
    ("mem_peak <= 80 GiB", 80 * 2**30),
    ("mem_peak <= 1.5e3 MB", 1_500_000_000),
    ("mem_peak <= 2**30*80", 80 * 2**30),
    ("mem_peak <= 1e9", 10**9),
    ("perf_relative >= 0.25", 0.25),
    ("perf_relative >= -1", -1),
])
def test_constraint_values(text, value):
    got = parse_constraint(text).value
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "NaN", "1e400", "1/0", "0 GiB", "GiB", "lots"])
def test_constraint_values_refused(value):
    with pytest.raises(ValueError, match="mem_peak") as info:
        parse_constraint(f"mem_peak <= {value}")
    assert repr(value) in str(info.value)


_CLAIMS = """
formula_set = "seed"
[values]
d_model = 768
n_layers = 12
vocab = 50000
[[claim]]
claim = "x"
claimed = 1
expr = "{expr}"
"""


@pytest.mark.parametrize("expr,message", [
    ("params_total / 0", "division by zero"),
    ("params_total / (d_model - 768)", "not a finite real number at the given values"),
    ("__import__('os').getcwd()", "unknown name __import__"),
    ("2**2**2**40", "too large"),
    ("(d_model**64)**64", "more than 4000 digits at the given values"),
])
def test_claims_refusals(tmp_path, capsys, expr, message):
    path = tmp_path / "claims.toml"
    path.write_text(_CLAIMS.format(expr=expr))
    err = _one_line_error(capsys, ["check", path])
    assert "claim[0].expr" in err and message in err
