"""The one safe reader of user formulas: arithmetic text -> sympy, never ``eval``.

Every piece of user text that becomes a formula (a claim's ``expr``, ``formulas --substitute``,
a query threshold) goes through :func:`parse_expression` or :func:`parse_number`. The text is
read by a small recursive-descent parser that only builds sympy objects; nothing in it is run,
looked up as an attribute or imported. The grammar (Python's precedence)::

    expression := term (("+" | "-") term)*
    term       := unary (("*" | "/") unary)*
    unary      := ("-" | "+") unary | power
    power      := primary ("**" unary)?            # right-associative: 2**3**2 = 2**9
    primary    := NUMBER | NAME | FUNCTION "(" expression ("," expression)* ")" | "(" expression ")"

* NUMBER: ``12``, ``1.5``, ``.5``, ``5.``, ``1e9``, ``2.5E-3``. Decimals are exact rationals as
  the text reads them (``0.1`` is 1/10, never a binary float).
* NAME: only the names of the ``names`` mapping the caller passes (name -> sympy expression);
  any other name is refused, with the valid ones listed.
* FUNCTION: ``sqrt, log, exp, min, max, ceiling, floor, Abs``, plus the spellings sympy prints or
  Python users write: ``Min, Max, ceil, abs``. ``log(x)`` is natural; ``log(x, b)`` is base b.

Limits, so that no text can hang or exhaust the process: at most :data:`MAX_LENGTH` characters
and :data:`MAX_DEPTH` nested parentheses/signs/powers; a constant exponent's absolute value is at
most :data:`MAX_EXPONENT` (so power towers like ``2**2**2**40`` are refused) and a fractional
one has a denominator of at most :data:`MAX_DENOMINATOR`; no constant may have more than
:data:`MAX_DIGITS` decimal digits (numerator, denominator or magnitude), which keeps every result
printable, and that counts the constants in a symbolic exponent of a number (``5**(1e9 - x)``)
or in ``exp``'s argument too; ``ceiling``/``floor`` of an irrational constant has at most
:data:`MAX_ROUNDED_DIGITS` digits. Any failure inside sympy becomes an ExpressionError. Division by a constant zero and results that are not finite
(``zoo``, ``nan``, ``oo``) or not real (``sqrt(-1)``) are refused.

Every refusal is an :class:`ExpressionError` (a ``ValueError``) that names the offending token,
its position (1-based character column) and what would be valid.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from typing import Callable, Mapping

import mpmath
import sympy

MAX_LENGTH = 1000
MAX_DEPTH = 50
MAX_EXPONENT = 64
MAX_DIGITS = 4000  # below Python's 4300-digit int-to-str limit, so every result prints
MAX_DENOMINATOR = 10_000  # of a constant fractional exponent: x**0.0761 is fine, x**1e-9 is not
MAX_ROUNDED_DIGITS = 100  # ceiling/floor of an irrational constant (sympy raises the precision)

FUNCTIONS: dict[str, tuple[Callable[..., sympy.Expr], int, int | None]] = {
    # name: (sympy function, fewest arguments, most arguments (None: any))
    "sqrt": (sympy.sqrt, 1, 1),
    "log": (sympy.log, 1, 2),
    "exp": (sympy.exp, 1, 1),
    "min": (sympy.Min, 1, None),
    "max": (sympy.Max, 1, None),
    "ceiling": (sympy.ceiling, 1, 1),
    "floor": (sympy.floor, 1, 1),
    "Abs": (sympy.Abs, 1, 1),
}
ALIASES = {"Min": "min", "Max": "max", "ceil": "ceiling", "abs": "Abs"}
_FUNCTION_LIST = "sqrt, log, exp, min, max, ceiling, floor, Abs (also Min, Max, ceil, abs)"
_SYNTAX = "numbers, names, + - * / ** ( ) and functions " + _FUNCTION_LIST
_NOT_FINITE = (sympy.nan, sympy.zoo, sympy.oo, -sympy.oo)


class ExpressionError(ValueError):
    """User text that is not a valid formula.

    Attributes:
        text: the whole text.
        position: 1-based column of the offending token (len(text) + 1 at the end).
        token: the offending token ("" at the end of the text).
        problem: what is wrong; ``str(error)`` adds where and what is valid.
    """

    def __init__(self, text: str, position: int, token: str, problem: str, hint: str = ""):
        self.text, self.position, self.token, self.problem = text, position, token, problem
        shown = text if len(text) <= 120 else text[:117] + "..."
        message = f"{problem} at position {position} of {shown!r}"
        super().__init__(f"{message}; {hint}" if hint else message)


@dataclass(frozen=True)
class _Token:
    kind: str  # "number", "name", "op" (including "//", always refused), "bad" (refused), "end"
    text: str
    pos: int  # 0-based


_TOKEN = re.compile(
    r"(?P<number>(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)"
    r"|(?P<op>\*\*|//|[-+*/(),])"
)
_HINTS = {
    "^": "use ** for powers",
    "//": "use floor(a / b) for floor division",
    "=": "write only the expression (no '=' or comparisons)",
    "'": "strings are not expressions",
    '"': "strings are not expressions",
    ".": "attribute access is not allowed",
    "[": "subscripts are not allowed",
    ";": "write one expression",
}


def parse_expression(text: str, names: Mapping[str, sympy.Expr]) -> sympy.Expr:
    """Read ``text`` as arithmetic over ``names`` (name -> sympy symbol or expression).

    Returns the sympy expression; raises :class:`ExpressionError` for anything else.
    """
    return _Parser(text, names).parse()


def parse_number(text: str) -> sympy.Expr:
    """Read a constant expression (``80``, ``1.5e3``, ``2**30*80``, ``sqrt(2)``): a finite real
    sympy number. No names are allowed, so ``nan``, ``inf`` and ``-inf`` are refused."""
    value = _Parser(text, {}).parse()
    if not value.is_number:  # cannot happen without names; kept as a guard
        raise ExpressionError(str(text), 1, str(text), "not a constant", "write a number")
    return value


class _Parser:
    def __init__(self, text: str, names: Mapping[str, sympy.Expr]):
        if not isinstance(text, str):
            raise ExpressionError(repr(text), 1, repr(text), f"expected text, got {type(text).__name__}",
                                  f"write an expression of {_SYNTAX}")
        self.text = text
        self.names = names
        self.depth = 0
        if len(text) > MAX_LENGTH:
            raise ExpressionError(text, MAX_LENGTH + 1, text[MAX_LENGTH:MAX_LENGTH + 10],
                                  f"the expression is {len(text)} characters long", f"at most {MAX_LENGTH}")
        self.tokens = self._tokenize()
        self.i = 0

    # -- tokens ----------------------------------------------------------------------------------
    def _tokenize(self) -> list[_Token]:
        text, pos, tokens = self.text, 0, []
        while pos < len(text):
            if text[pos].isspace():
                pos += 1
                continue
            m = _TOKEN.match(text, pos)
            if not m:  # refused when the parser reaches it, so earlier errors are named first
                tokens.append(_Token("bad", text[pos], pos))
                pos += 1
                continue
            tokens.append(_Token(m.lastgroup, m.group(), pos))
            pos = m.end()
        tokens.append(_Token("end", "", len(text)))
        return tokens

    def _peek(self) -> _Token:
        return self.tokens[self.i]

    def _next(self) -> _Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def _error(self, pos: int, token: str, problem: str, hint: str = "") -> ExpressionError:
        return ExpressionError(self.text, pos + 1, token, problem, hint)

    def _unexpected(self, tok: _Token, expected: str) -> ExpressionError:
        if tok.kind == "end":
            what = "empty expression" if tok.pos == 0 or not self.text.strip() else "the expression ends early"
            return self._error(tok.pos, "", f"cannot parse: {what}", f"expected {expected}")
        if tok.kind == "bad":
            expected = f"valid: {_SYNTAX}"
        hint = _HINTS.get(tok.text, f"expected {expected}")
        return self._error(tok.pos, tok.text, f"cannot parse: unexpected {tok.text!r}", hint)

    # -- grammar ---------------------------------------------------------------------------------
    def parse(self) -> sympy.Expr:
        value = self._expression()
        tok = self._peek()
        if tok.kind != "end":
            expected = "an operator (+ - * / **) or the end" if tok.text != "," else \
                "an operator; commas only separate a function's arguments"
            raise self._unexpected(tok, expected)
        return value

    def _expression(self) -> sympy.Expr:
        """Terms joined by ``+`` and ``-``."""
        return self._left_to_right(("+", "-"), self._term)

    def _term(self) -> sympy.Expr:
        """Factors joined by ``*`` and ``/``."""
        return self._left_to_right(("*", "/"), self._unary)

    def _left_to_right(self, ops: tuple[str, ...], operand: Callable[[], sympy.Expr]) -> sympy.Expr:
        """``operand (op operand)*`` for the binary operators ``ops`` of one precedence, applied left to right."""
        value = operand()
        while self._peek().text in ops and self._peek().kind == "op":
            op = self._next()
            value = self._binary(op, value, operand())
        return value

    def _binary(self, op: _Token, left: sympy.Expr, right: sympy.Expr) -> sympy.Expr:
        """``left op right`` for ``+ - * /``, checked; a division by an exact 0 is refused."""
        if op.text in ("+", "-"):
            return self._apply(op, sympy.Add, left, right if op.text == "+" else -right)
        if op.text == "*":
            return self._apply(op, sympy.Mul, left, right)
        if right.is_number and right.is_zero:
            raise self._error(op.pos, "/", "division by zero", "the divisor is 0")
        return self._apply(op, lambda a, b: a / b, left, right)

    def _unary(self) -> sympy.Expr:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            tok = self._peek()
            raise self._error(tok.pos, tok.text, "the expression nests too deeply",
                              f"at most {MAX_DEPTH} levels of parentheses, signs and powers")
        try:
            tok = self._peek()
            if tok.kind == "op" and tok.text in ("-", "+"):
                self._next()
                operand = self._unary()
                return self._apply(tok, lambda a: -a, operand) if tok.text == "-" else operand
            return self._power()
        finally:
            self.depth -= 1

    def _power(self) -> sympy.Expr:
        base = self._primary()
        tok = self._peek()
        if tok.kind == "op" and tok.text == "**":
            self._next()
            exponent = self._unary()
            return self._pow(base, exponent, tok)
        return base

    def _primary(self) -> sympy.Expr:
        tok = self._next()
        if tok.kind == "number":
            return self._number(tok)
        if tok.kind == "name":
            if self._peek().text == "(" and self._peek().kind == "op":
                return self._call(tok)
            if tok.text in self.names:
                return _as_expr(self.names[tok.text], tok.text)
            raise self._unknown_name(tok)
        if tok.kind == "op" and tok.text == "(":
            value = self._expression()
            close = self._next()
            if close.text != ")" or close.kind != "op":
                self.i -= 1
                raise self._unexpected(close, "')' or an operator")
            return value
        self.i -= 1
        raise self._unexpected(tok, "a number, a name, a function call or '('")

    def _unknown_name(self, tok: _Token) -> ExpressionError:
        valid = list(self.names)
        close = difflib.get_close_matches(tok.text, valid + list(FUNCTIONS) + list(ALIASES), n=1,
                                          cutoff=0.75)
        guess = f"did you mean {close[0]}? " if close else ""
        if valid:
            hint = f"{guess}valid names: {', '.join(valid)}; functions: {_FUNCTION_LIST}"
        else:
            hint = f"{guess}no names are valid here: write a number or a constant expression such as 2**30*80 " \
                   f"(functions: {_FUNCTION_LIST})"
        if tok.text in FUNCTIONS or tok.text in ALIASES:
            return self._error(tok.pos, tok.text, f"function {tok.text} needs its arguments in parentheses",
                               f"e.g. {tok.text}(x)")
        return self._error(tok.pos, tok.text, f"unknown name {tok.text}", hint)

    def _call(self, name: _Token) -> sympy.Expr:
        canonical = ALIASES.get(name.text, name.text)
        if canonical not in FUNCTIONS:
            if name.text in self.names:
                raise self._error(name.pos, name.text, f"{name.text} is not a function",
                                  "write * for a product, e.g. 2 * (a + b)")
            raise self._error(name.pos, name.text, f"unknown name {name.text}",
                              f"not a valid function: valid functions: {_FUNCTION_LIST}")
        func, least, most = FUNCTIONS[canonical]
        self._next()  # "("
        self.depth += 1
        try:
            args = [self._expression()]
            while self._peek().text == "," and self._peek().kind == "op":
                self._next()
                args.append(self._expression())
        finally:
            self.depth -= 1
        close = self._next()
        if close.text != ")" or close.kind != "op":
            self.i -= 1
            raise self._unexpected(close, f"')' closing {name.text}( or ',' before another argument")
        if len(args) < least or (most is not None and len(args) > most):
            count = f"{least}" if least == most else f"{least} to {most}" if most else f"at least {least}"
            raise self._error(name.pos, name.text, f"{name.text} takes {count} argument(s), got {len(args)}")
        if canonical == "exp":
            # exp(x) has about x / ln 10 digits: refuse before anything evaluates it (for a
            # symbolic x, its largest constant: exp(1e9 - y) holds exp(1e9))
            big = abs(_as_float(args[0], self, name)) if args[0].is_number else _largest_constant(args[0])
            if big > MAX_DIGITS * math.log(10):
                raise self._error(name.pos, name.text, f"exp of {_short(args[0])} is too large",
                                  f"constants have at most {MAX_DIGITS} digits")
        if canonical in ("ceiling", "floor") and args[0].is_number and not args[0].is_Rational:
            # sympy finds the integer part of an irrational constant by raising the precision
            if _log10_abs(args[0], self, name) > MAX_ROUNDED_DIGITS:
                raise self._error(name.pos, name.text, f"{name.text} of {_short(args[0])} is too large",
                                  f"{name.text} of an irrational constant has at most {MAX_ROUNDED_DIGITS} digits")
        if canonical == "log" and len(args) == 2 and args[1].is_number and (args[1] - 1).is_zero:
            raise self._error(name.pos, name.text, "division by zero", "a logarithm's base cannot be 1")
        return self._apply(name, func, *args)

    def _number(self, tok: _Token) -> sympy.Expr:
        mantissa, _, exp_text = tok.text.lower().partition("e")
        whole, _, frac = mantissa.partition(".")
        exponent = int(exp_text or 0) - len(frac)
        digits = (whole + frac).lstrip("0")
        if not digits:
            return sympy.Integer(0)
        if (len(digits) + exponent > MAX_DIGITS or -exponent > MAX_DIGITS):
            raise self._error(tok.pos, tok.text, f"the number {tok.text} is too large or too precise",
                              f"numbers have at most {MAX_DIGITS} digits")
        n = int(whole + frac or "0")
        return sympy.Integer(n * 10**exponent) if exponent >= 0 else sympy.Rational(n, 10**-exponent)

    # -- checks ----------------------------------------------------------------------------------
    def _pow(self, base: sympy.Expr, exponent: sympy.Expr, op: _Token) -> sympy.Expr:
        if exponent.is_Rational and exponent.q > MAX_DENOMINATOR:
            # sympy simplifies a root by factoring and powering with the denominator: keep it small
            raise self._error(op.pos, "**", f"the exponent {_short(exponent)} is too fine a fraction",
                              f"a constant exponent's denominator is at most {MAX_DENOMINATOR} (e.g. 0.0761)")
        if exponent.is_number:
            e = _as_float(exponent, self, op)
            if abs(e) > MAX_EXPONENT:
                raise self._error(op.pos, "**", f"the exponent {_short(exponent)} is too large",
                                  f"a constant exponent is at most {MAX_EXPONENT} in absolute value "
                                  "(power towers such as 2**2**2**40 are refused)")
            if base.is_number:
                if base.is_zero and e < 0:
                    raise self._error(op.pos, "**", "division by zero", "0 to a negative power")
                if not base.is_zero and abs(e * _log10_abs(base, self, op)) > MAX_DIGITS:
                    raise self._error(op.pos, "**", f"{_short(base)}**{_short(exponent)} is too large",
                                      f"constants have at most {MAX_DIGITS} digits")
        elif base.is_number and not base.is_zero:
            # 5**(1e9 - y) holds 5**1e9 (sympy may expand it): bound the exponent's constants too
            big = _largest_constant(exponent)
            if big * abs(_log10_abs(base, self, op)) > MAX_DIGITS:
                raise self._error(op.pos, "**", f"{_short(base)}**({_short(exponent)}) is too large",
                                  f"constants have at most {MAX_DIGITS} digits")
        return self._apply(op, sympy.Pow, base, exponent)

    def _apply(self, op: _Token, func: Callable[..., sympy.Expr], *args: sympy.Expr) -> sympy.Expr:
        """``func(*args)``, the operation at ``op``, checked; any sympy failure is an ExpressionError."""
        try:
            return self._check(func(*args), op)
        except ExpressionError:
            raise
        except Exception as exc:  # sympy raises many kinds (PrecisionExhausted, TypeError, ...)
            detail = _short(" ".join(str(exc).split()))
            raise self._error(op.pos, op.text, f"cannot evaluate {op.text!r}",
                              f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__) from None

    def _check(self, value: sympy.Expr, op: _Token) -> sympy.Expr:
        """Refuse a non-finite, non-real or oversized constant built at ``op``."""
        if value.has(*_NOT_FINITE):
            raise self._error(op.pos, op.text, "division by zero or a result that is not finite",
                              f"the result is {_short(value)}")
        if value.is_Rational:
            if max(abs(value.p).bit_length(), value.q.bit_length()) > MAX_DIGITS * 3.33:
                raise self._error(op.pos, op.text, "the result has too many digits",
                                  f"constants have at most {MAX_DIGITS} digits")
        elif any(p.exp.is_Rational and p.exp.q > MAX_DENOMINATOR**2 for p in value.atoms(sympy.Pow)):
            raise self._error(op.pos, op.text, "the result has too fine a root",
                              f"constant exponents have denominators of at most {MAX_DENOMINATOR}")
        if value.is_number and not value.is_Rational:
            if value.is_real is False:
                raise self._error(op.pos, op.text, f"the result {_short(value)} is not a real number")
            if abs(_log10_abs(value, self, op)) > MAX_DIGITS:
                raise self._error(op.pos, op.text, "the result is too large or too small",
                                  f"constants have at most {MAX_DIGITS} digits")
        return value


def _as_expr(value, name: str) -> sympy.Expr:
    if isinstance(value, sympy.Basic):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return sympy.Integer(value)
    raise TypeError(f"names[{name!r}] must be a sympy expression, got {type(value).__name__}")


def _short(value: sympy.Expr) -> str:
    text = str(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _approx(value: sympy.Expr, parser: _Parser, op: _Token) -> mpmath.mpf:
    approx = sympy.N(value, 15)
    if not approx.is_real or not approx.is_finite:
        raise parser._error(op.pos, op.text, f"{_short(value)} is not a finite real number")
    return mpmath.mpf(approx)


def _as_float(value: sympy.Expr, parser: _Parser, op: _Token) -> float:
    if value.is_Rational:
        return float(value) if value.q.bit_length() < 1000 and abs(value.p).bit_length() < 1000 else math.inf
    return float(_approx(value, parser, op))


def _largest_constant(expr: sympy.Expr) -> float:
    """The largest absolute value of a number written in ``expr`` (inf when huge)."""
    sizes = [abs(float(a)) if a.is_Float else
             (math.inf if abs(a.p).bit_length() - a.q.bit_length() > 1000 else abs(a.p / a.q))
             for a in expr.atoms(sympy.Number) if a.is_Rational or a.is_Float]
    return max(sizes, default=0.0)


def _log10_abs(value: sympy.Expr, parser: _Parser, op: _Token) -> float:
    """log10 |value| of a nonzero constant (approximate; enough for a size limit)."""
    if value.is_Rational:
        return (abs(value.p).bit_length() - value.q.bit_length()) * math.log10(2)
    approx = _approx(value, parser, op)
    return 0.0 if approx == 0 else float(mpmath.log10(abs(approx)))
