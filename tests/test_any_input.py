"""Any user-facing input, generated (hypothesis): specs, config.json files, --where and --substitute strings,
claims files with non-finite numbers, every precision name and alias in every command, nested JSON and TOML.

Every case either succeeds (exit 0, its output written) or is refused in one line with exit 2 —
never a traceback, never a file or temporary file left behind. Cases run in-process through
``main([...])``; grids stay tiny so that an accepted spec runs in milliseconds.
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.cli import main

FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
                derandomize=True)

INPUTS = ["d_model", "n_layers", "n_heads", "n_kv_heads", "d_ff", "vocab", "batch", "seq_len", "head_dim",
          "bytes_param", "alpha", "nonsense", "D_MODEL", ""]
QUANTITIES = ["params_total", "mem_peak", "params_layer", "mem_activations", "perf_relative", "no_such_quantity"]


class Raw(str):
    """TOML text written as it is: 1e400 (read as inf), -nan, a value nested thousands of levels deep."""


def _toml_value(v) -> str:
    if isinstance(v, Raw):
        return str(v)
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)  # a TOML basic string is JSON-compatible for these characters
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{json.dumps(k)} = {_toml_value(x)}" for k, x in v.items()) + " }"
    raise TypeError(v)


def to_toml(tables: dict) -> str:
    out = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            out.insert(0, f"{json.dumps(name)} = {_toml_value(table)}")
            continue
        out.append(f"[{json.dumps(name)}]")
        out.extend(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in table.items())
    return "\n".join(out) + "\n"


non_finite = st.sampled_from([Raw("1e400"), Raw("-1e400"), Raw("nan"), Raw("-nan"), Raw("inf"), Raw("-inf"),
                              Raw("1e-400"), Raw("1.7976931348623157e308")])
# a list nested 1 to 100,000 levels deep: the parsers recursed per level (RecursionError in every command)
nested = st.integers(1, 100_000).map(lambda n: Raw("[" * n + "]" * n))


def _precision_names() -> list[str]:
    from engine.options import PRECISION_ALIASES, PRECISIONS

    return [*PRECISIONS, *(a for a, _ in PRECISION_ALIASES), "", "BF16", "bf16 ", "fp4", "tf32", "32", "nan"]


PRECISION_NAMES = _precision_names()


scalars = st.one_of(
    st.integers(-3, 5000), st.integers(2**62, 2**63 - 1), st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(), st.sampled_from(["2**10", "1/0", "__import__('os')", "64", "", "1e3", "2**2**2**40", "x"]),
    non_finite,
)
small_ints = st.integers(-2, 4096)

axis_values = st.one_of(
    st.lists(small_ints, min_size=0, max_size=4),
    st.lists(scalars, min_size=1, max_size=3),
    st.fixed_dictionaries({"start": small_ints, "stop": small_ints},
                          optional={"step": st.integers(-2, 2000), "scale": st.sampled_from(["log2", "linear", "ln"])}),
    scalars,
)
specs = st.fixed_dictionaries(
    {"sweep": st.fixed_dictionaries(
        {"formula_set": st.sampled_from(["seed", "seed", "llama", 7])},
        optional={"quantities": st.lists(st.sampled_from(QUANTITIES), min_size=0, max_size=3),
                  "numerics": st.sampled_from(["exact", "fast", "fp16"]),
                  "precision": st.sampled_from(["exact", "fast"]),
                  "compression": st.integers(-1, 10),
                  "output": st.sampled_from(["ok.nc", "/tmp/abs.nc", "../up.nc", "", "sub/x.nc"]),
                  "bogus": scalars}),
     "axes": st.dictionaries(st.sampled_from(INPUTS), axis_values, min_size=0, max_size=4)},
    optional={"fixed": st.dictionaries(st.sampled_from(INPUTS), scalars, max_size=4),
              "options": st.dictionaries(st.sampled_from(["tied_head", "mode", "bogus"]), scalars, max_size=2),
              "query": st.dictionaries(st.sampled_from(["where", "maximize", "over", "bogus"]),
                                       st.one_of(scalars, st.lists(st.sampled_from(INPUTS + QUANTITIES), max_size=2)),
                                       max_size=3)},
)


VALID_BASE = {"sweep": {"formula_set": "seed", "quantities": ["params_total", "mem_peak"]},
              "fixed": {"vocab": 50000, "batch": 2},
              "axes": {"d_model": [256, 512], "n_layers": [2, 4], "seq_len": [128, 256]}}
ARCH_BASE = {"sweep": {"arch": "llama-2-7b", "quantities": ["params_total", "mem_peak"]},
             "options": {"mode": "inference"}, "fixed": {"batch": 1},
             "axes": {"seq_len": [512, 1024], "n_kv_heads": [1, 3, 8]}}
MUTABLE = [("sweep", "formula_set"), ("sweep", "quantities"), ("sweep", "numerics"), ("sweep", "precision"),
           ("sweep", "compression"), ("sweep", "output"), ("sweep", "arch"), ("fixed", "vocab"), ("fixed", "batch"), ("fixed", "d_ff"),
           ("fixed", "alpha"), ("axes", "d_model"), ("axes", "n_layers"), ("axes", "seq_len"), ("axes", "n_heads"),
           ("options", "tied_head"), ("options", "mode"), ("options", "precision"), ("options", "zero"),
           ("axes", "n_kv_heads"), ("fixed", "n_heads"), ("query", "where"), ("query", "over"),
           ("query", "maximize")]


@st.composite
def near_valid_specs(draw):
    """A valid tiny spec with one to three fields replaced: reaches the checks deep inside."""
    import copy

    spec = copy.deepcopy(draw(st.sampled_from([VALID_BASE, ARCH_BASE])))
    for _ in range(draw(st.integers(1, 3))):
        table, key = draw(st.sampled_from(MUTABLE))
        value = draw(st.one_of(scalars, axis_values, st.lists(st.sampled_from(INPUTS + QUANTITIES), max_size=3),
                               st.sampled_from(["mem_peak <= 80GiB", "params_total > 1e9", "mem_peak <= nan",
                                                "llama-2-7b", "gpt2", "seed"]),
                               st.sampled_from(PRECISION_NAMES), nested))
        spec.setdefault(table, {})[key] = value
    return spec


def _check_outcome(code: int, err: str, folder: Path, written: Path | None) -> None:
    assert "Traceback" not in err, err
    leftovers = [p.name for p in folder.rglob("*.tmp")]
    assert leftovers == [], leftovers
    assert code in (0, 2), (code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and ": error: " in lines[0], err
        if written is not None:
            assert not written.exists()
    elif written is not None:
        assert written.is_file()


@FAST
@given(spec=st.one_of(specs, near_valid_specs()))
def test_any_spec_succeeds_or_is_refused_in_one_line(spec, tmp_path_factory, capsys, monkeypatch):
    folder = tmp_path_factory.mktemp("spec")
    monkeypatch.chdir(folder)  # a spec's own output key stays inside this folder
    (folder / "sub").mkdir()
    # the axes of an accepted spec stay tiny: at most 4 values a list, ranges cut to 4 values
    for name, axis in spec["axes"].items():
        if isinstance(axis, dict) and isinstance(axis.get("start"), int) and isinstance(axis.get("stop"), int):
            step = axis.get("step", 1)
            if isinstance(step, int) and step > 0:
                axis["stop"] = min(axis["stop"], axis["start"] + 3 * step)
    path = folder / "spec.toml"
    path.write_text(to_toml(spec))
    out = folder / "out.nc"
    code = main(["run", str(path), "-o", str(out), "--quiet"])
    _, err = capsys.readouterr()
    _check_outcome(code, err, folder, out)


config_fields = st.dictionaries(
    st.sampled_from(["model_type", "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                     "intermediate_size", "vocab_size", "head_dim", "tie_word_embeddings", "n_embd", "n_layer",
                     "max_position_embeddings", "num_local_experts", "num_experts_per_tok", "attention_bias",
                     "architectures", "bogus"]),
    st.one_of(scalars, st.sampled_from(["llama", "gpt2", "mixtral", "bert", "falcon"]), st.none(),
              st.lists(st.integers(0, 3), max_size=2)),
    max_size=8,
)


@FAST
@given(config=st.one_of(config_fields, st.lists(st.integers(), max_size=2), st.text(max_size=20)))
def test_any_config_json_succeeds_or_is_refused_in_one_line(config, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("config")
    path = folder / "config.json"
    path.write_text(config if isinstance(config, str) else json.dumps(config))
    code = main(["params", "--hf-config", str(path), "--json"])
    out, err = capsys.readouterr()
    _check_outcome(code, err, folder, None)
    if code == 0:
        assert json.loads(out)["total"] > 0


EXPRESSION_ALPHABET = st.sampled_from(["d_model", "n_layers", "4", "2", "0", "1e9", "0.5", "+", "-", "*", "/",
                                       "**", "(", ")", "sqrt(", "log(", "min(", ",", "nan", "inf", "x", "__",
                                       "import", "'", ".", "[", "]", "^", " ", "80GiB", "GiB", "=", ";"])
expressions = st.lists(EXPRESSION_ALPHABET, min_size=0, max_size=12).map("".join)


@FAST
@given(text=expressions)
def test_any_substitute_succeeds_or_is_refused_in_one_line(text, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("subst")
    code = main(["formulas", "--substitute", f"d_ff={text}"])
    _, err = capsys.readouterr()
    _check_outcome(code, err, folder, None)


@pytest.fixture(scope="module")
def where_spec(tmp_path_factory):
    folder = tmp_path_factory.mktemp("where")
    path = folder / "w.toml"
    path.write_text('[sweep]\nformula_set = "seed"\nquantities = ["params_total", "mem_peak"]\n'
                    '[fixed]\nvocab = 50000\nbatch = 1\nseq_len = 128\n'
                    '[axes]\nd_model = [256, 512]\nn_layers = [2, 4]\n')
    return path


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(quantity=st.sampled_from(["mem_peak", "params_total", "nope", ""]),
       op=st.sampled_from(["<=", "<", ">=", "==", "=<", "!="]),
       value=st.one_of(expressions, st.integers(-10, 10**12).map(str), st.floats().map(repr),
                       st.sampled_from(["80GiB", "80 GiB", "1.5e3 MB", "2**30*80", "1 PB", "-1GiB", "0"])))
def test_any_where_succeeds_or_is_refused_in_one_line(quantity, op, value, where_spec, tmp_path_factory, capsys):
    folder = tmp_path_factory.mktemp("q")
    out = folder / "q.nc"
    code = main(["run", str(where_spec), "-o", str(out), "--quiet", "--where", f"{quantity} {op} {value}",
                 "--over", "d_model"])
    _, err = capsys.readouterr()
    _check_outcome(code, err, folder, out)


# -- issue 23: the generators that found the last tracebacks ----------------------------------------------------

claim_values = st.dictionaries(st.sampled_from(["d_model", "n_layers", "n_heads", "vocab", "batch", "seq_len",
                                                "alpha", "bytes_param", "n_shared_experts", "nonsense"]),
                               st.one_of(scalars, non_finite), max_size=4)
claims = st.fixed_dictionaries(
    {"formula_set": st.sampled_from(["seed", "seed", "seed", "llama", 3]),
     "claim": st.lists(st.fixed_dictionaries(
         {"claim": st.sampled_from(["x", "the total", ""]),
          "claimed": st.one_of(scalars, non_finite, st.sampled_from(["params_total", "1e400", "10**400", "nan",
                                                                      "d_model / 0", "2**2**2**40"])),
          "expr": st.one_of(st.sampled_from(QUANTITIES + INPUTS), expressions)},
         optional={"values": st.one_of(claim_values, scalars), "abs_tol": st.one_of(scalars, non_finite),
                   "rel_tol": st.one_of(scalars, non_finite), "options": st.one_of(
                       st.dictionaries(st.sampled_from(["tied_head", "bogus"]), scalars, max_size=1), scalars),
                   "note": scalars}), min_size=0, max_size=2)},
    optional={"values": st.one_of(claim_values, scalars, nested), "source": scalars},
)


def _claims_toml(data: dict) -> str:
    top = {k: v for k, v in data.items() if k != "claim"}
    lines = [to_toml({k: v for k, v in top.items() if not isinstance(v, dict)}).strip()]
    lines += [to_toml({k: v}).strip() for k, v in top.items() if isinstance(v, dict)]
    for entry in data["claim"]:
        lines.append("[[claim]]")
        lines.extend(f"{json.dumps(k)} = {_toml_value(v)}" for k, v in entry.items())
    return "\n".join(x for x in lines if x) + "\n"


@FAST
@given(data=claims)
def test_any_claims_file_is_checked_or_refused_in_one_line(data, tmp_path_factory, capsys):
    """Exit 0 (every claim holds), 1 (one is wrong: a verdict, never an error) or 2 with one line; a claimed
    nan/inf/1e400 was a sympy traceback with exit 1."""
    folder = tmp_path_factory.mktemp("claims")
    path = folder / "c.toml"
    path.write_text(_claims_toml(data))
    code = main(["check", str(path)])
    out, err = capsys.readouterr()
    assert "Traceback" not in err, err
    assert code in (0, 1, 2), (code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and ": error: " in lines[0], err
    else:
        assert err == "" and ("hold" in out)


PRECISION_COMMANDS = {
    "memory": ["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8"],
    "memory-inference": ["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--mode", "inference"],
    "memory-korthikanti": ["memory", "--arch", "gpt2", "--batch", "1", "--seq-len", "8", "--memory-model",
                           "korthikanti"],
    "flops": ["flops", "--arch", "gpt2", "--batch", "1", "--seq-len", "8"],
    "time": ["time", "--arch", "gpt2", "--gpu", "h100", "--gpus", "1", "--seq-len", "8", "--global-batch", "1"],
    "time-inference": ["time", "--arch", "gpt2", "--gpu", "a100", "--gpus", "1", "--seq-len", "8", "--global-batch",
                       "1", "--mode", "inference"],
    "plan": ["plan", "--arch", "gpt2", "--gpu", "h100", "--gpus", "1", "--seq-len", "8", "--global-batch", "1",
             "--zero", "1", "--recompute", "none", "--top", "1"],
}


@pytest.mark.parametrize("command", PRECISION_COMMANDS)
def test_every_precision_name_in_every_command(command, capsys):
    """Every precision, alias and near-miss in every command that takes --precision: an answer or one line
    (plan --precision bf16-amp was a ValueError traceback); an alias answers as its canonical name."""
    from engine.options import PRECISION_ALIASES

    canonical = dict(PRECISION_ALIASES)
    answers = {}
    for name in PRECISION_NAMES:
        code = main([*PRECISION_COMMANDS[command], "--precision", name])
        out, err = capsys.readouterr()
        assert "Traceback" not in err, (name, err)
        assert code in (0, 2), (name, code, err)
        if code == 2:
            assert len(err.strip().splitlines()) == 1 and ": error: " in err, (name, err)
        answers[name] = (code, re.sub(r"; [0-9.]+ s$", "", out, flags=re.M))  # plan's search time
    for alias, name in canonical.items():
        assert answers[alias] == answers[name], (alias, name)


json_leaves = st.one_of(st.integers(-3, 10**6), st.floats(allow_nan=False), st.booleans(), st.none(),
                        st.sampled_from(["llama", "gpt2", "x"]))
nested_json = st.recursive(json_leaves, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                                st.dictionaries(st.sampled_from(
                                                                    ["text_config", "rope_scaling", "a", "model_type"]),
                                                                    inner, max_size=3)), max_leaves=20)


@FAST
@given(base=st.sampled_from([{"model_type": "llama"}, {"model_type": "llava", "text_config": {}}, {}]),
       key=st.sampled_from(["text_config", "rope_scaling", "architectures", "quantization_config", "bogus"]),
       value=st.one_of(nested_json, st.integers(1, 200_000)))
def test_any_nested_config_json_succeeds_or_is_refused_in_one_line(base, key, value, tmp_path_factory, capsys):
    """A field holding nested JSON (up to 200,000 levels: an int here means that many nested lists)."""
    folder = tmp_path_factory.mktemp("nested")
    path = folder / "config.json"
    inner = "[" * value + "]" * value if isinstance(value, int) else json.dumps(value)
    text = json.dumps(base)[:-1] + (", " if base else "") + f"{json.dumps(key)}: {inner}" + "}"
    path.write_text(text)
    code = main(["params", "--hf-config", str(path), "--json"])
    out, err = capsys.readouterr()
    _check_outcome(code, err, folder, None)
    if code == 0:
        assert json.loads(out)["total"] > 0


# -- issue 23: command lines (benchmarks/adversarial_cli.py fuzz found these) --------------------------------------
# argparse printed its usage before the error (two lines or more, 4,502 of 10,000 fuzzed command lines) and named
# the top-level usage for an unknown flag after a command; a --max-device-mem of 1e400B was an OverflowError.

def _command_flags() -> dict[str, list[tuple[str, bool]]]:
    """Each command's flags from the parser itself: (flag, takes a value)."""
    import argparse

    from engine.cli import _parser

    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {name: [(a.option_strings[-1], a.nargs != 0) for a in p._actions if a.option_strings and a.dest != "help"]
            for name, p in sub.choices.items()}


COMMAND_FLAGS = _command_flags()
# commands that answer in milliseconds once parsed (run and open get a spec that does not exist: refused after
# parsing; plot a cube that does not exist)
WORKING = {
    "memory": ["--arch", "gpt2", "--batch", "1", "--seq-len", "8"],
    "params": ["--arch", "gpt2"],
    "flops": ["--arch", "gpt2", "--batch", "1", "--seq-len", "8"],
    "formulas": ["--arch", "seed"],
    "time": ["--arch", "gpt2", "--gpu", "h100", "--gpus", "1", "--seq-len", "8", "--global-batch", "1"],
    "check": ["no-such-claims.toml"],
    "run": ["no-such-spec.toml"],
    "open": ["no-such-spec.toml"],
    "combine": ["no-such-part.nc", "-o", "joined.nc"],
    "plot": ["no-such-cube.nc", "mem_peak", "--x", "d_model", "-o", "fig.png"],
}
VALUES = st.sampled_from(["1", "0", "-1", "1.5", "nan", "inf", "-inf", "1e400", "NaN", "", "x", "2**10", "1e3",
                          "99999999999999999999", "gpt2", "bf16-amp", "fast", "exact", "none", "full", "h100",
                          "80GiB", "1e400B", "d_ff=-d_model", "tied_head=maybe", "bits_opt=nan", "-", "--"])


@st.composite
def command_lines(draw):
    """A working command line with one to four words changed: a flag of the command with a hostile value, an
    unknown or misspelt flag, a flag missing its value, a stray word, a word dropped."""
    command = draw(st.sampled_from(sorted(WORKING)))
    args = [command, *WORKING[command]]
    flags = COMMAND_FLAGS[command] or [("--bogus", False)]  # open has no flag of its own
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["flag", "flag", "unknown", "missing", "stray", "drop", "precision"]))
        if kind == "flag":
            flag, takes = draw(st.sampled_from(flags))
            args += [flag, draw(VALUES)] if takes else [flag]
        elif kind == "precision" and any(f == "--precision" for f, _ in flags):
            args += ["--precision", draw(st.sampled_from(PRECISION_NAMES))]
        elif kind == "unknown":
            flag, _ = draw(st.sampled_from(flags))
            cut = draw(st.integers(2, max(2, len(flag) - 1)))
            args += [draw(st.sampled_from([flag[:cut] + flag[cut + 1:], flag + "s", flag.replace("-", "_"),
                                           "--bogus", "-x"]))]
            if draw(st.booleans()):
                args.append(draw(VALUES))
        elif kind == "missing":
            takes = [f for f, t in flags if t]
            if takes:
                args.append(draw(st.sampled_from(takes)))
        elif kind == "stray":
            args.insert(draw(st.integers(1, len(args))), draw(VALUES))
        elif len(args) > 1:
            del args[draw(st.integers(1, len(args) - 1))]
    return args


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture],
          derandomize=True)
@given(argv=command_lines())
def test_any_command_line_is_answered_or_refused_in_one_line(argv, tmp_path_factory, capsys, monkeypatch):
    """Exit 0, 1 (check's verdict), 2 with one 'llm-sweep COMMAND: error: ...' line, or 3 (plan's nothing fits);
    never a traceback, never argparse's usage."""
    monkeypatch.chdir(tmp_path_factory.mktemp("argv"))
    try:
        code = main(argv)
    except SystemExit as exc:  # only --help and --version leave through argparse
        code = exc.code
        assert code == 0, (argv, code)
        return
    _, err = capsys.readouterr()
    assert "Traceback" not in err, (argv, err)
    assert code in (0, 1, 2, 3), (argv, code, err)
    if code == 2:
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"llm-sweep {argv[0]}: error: "), (argv, err)
        assert "usage:" not in err


@pytest.mark.parametrize("size", ["1e400B", "1e400", "1e300TiB", "-1e400GiB", "inf", "nan", "1e400 GiB"])
def test_a_non_finite_device_memory_is_refused_in_one_line(size, where_spec, tmp_path, capsys):
    """--max-device-mem 1e400B was an OverflowError traceback (float infinity to int)."""
    out = tmp_path / "x.nc"
    code = main(["run", str(where_spec), "-o", str(out), "--quiet", f"--max-device-mem={size}"])
    _, err = capsys.readouterr()
    assert code == 2 and not out.exists(), err
    assert err.startswith("llm-sweep run: error: --max-device-mem: ") and err.count("\n") == 1, err
