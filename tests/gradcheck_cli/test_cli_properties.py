"""Property tests of the command line: an expression may start with '-' wherever it goes, and a
variable name is the same Unicode identifier in the expression and in --at."""

from __future__ import annotations

import json
import unicodedata

from click.testing import CliRunner
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from test_expr_properties import points, variable_trees

from gradcheck_cli.cli import _LONG_OPTION, main
from gradcheck_cli.expr import CONSTANTS, ExprError, Node, is_name, parse, to_text
from gradcheck_cli.table import SPELLINGS, UNSUPPORTED

SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def invoke(args: list[str]) -> tuple[int, str]:
    result = CliRunner().invoke(main, args, env={"COLUMNS": "100", "NO_COLOR": "1"})
    return result.exit_code, result.output


def _at(names: tuple[str, ...], point: dict[str, float]) -> str:
    return ",".join(f"{v}={point[v]!r}" for v in names)


@SETTINGS
@given(variable_trees, points, st.permutations([0, 1, 2]), st.booleans())
def test_an_expression_that_starts_with_minus_goes_anywhere_among_the_options(
    tree: Node, point: dict[str, float], order: list[int], two: bool
) -> None:
    text = to_text(Node("neg", None, (tree,)))
    assume(text.startswith("-"))
    assume(not _LONG_OPTION.fullmatch(text))  # --x reads as an option: see the test below
    names = parse(text).variables
    groups = [[text], ["--at", _at(names, point)], ["--json", *(["--order", "2"] if two else [])]]
    args = ["grad", *[arg for i in order for arg in groups[i]]]
    code, out = invoke(args)
    # The reference: the same command with the expression behind '--', as before the fix.
    ref_code, ref_out = invoke(["grad", *groups[1], *groups[2], "--", text])
    assert "No such option" not in out, (args, out)
    assert (code, out) == (ref_code, ref_out), args
    if code in (0, 1):
        assert json.loads(out)["cases"][0]["expr"] == text


def test_a_double_negation_that_reads_as_an_option_stays_an_option() -> None:
    # A mistyped option must not silently become the expression; '--' or -(-x) gives it.
    assert invoke(["grad", "--x", "--at", "x=2"])[0] == 2
    assert "No such option '--x'" in invoke(["grad", "--x", "--at", "x=2"])[1]
    for text in ("--x*x", "--(x)", "---x"):
        code, out = invoke(["grad", text, "--at", "x=2", "--json"])
        ref = invoke(["grad", "--at", "x=2", "--json", "--", text])
        assert (code, out) == ref and "No such option" not in out, text


# Letters, marks, digits and connectors from all of Unicode; superscript digits are powers.
identifiers = st.text(
    alphabet=st.characters(categories=("Lu", "Ll", "Lt", "Lm", "Lo", "Nl", "Mn", "Nd", "Pc")),
    min_size=1,
    max_size=4,
).filter(lambda s: s.isidentifier() and s not in SPELLINGS | set(UNSUPPORTED) | set(CONSTANTS))


@SETTINGS
@given(identifiers, st.floats(min_value=-3, max_value=3, allow_nan=False).filter(bool))
@example("if", 2.0)  # a word operator: refused by the expression, so by --at too
@example("lambda", 2.0)  # other Python keywords are names
def test_a_unicode_name_works_in_the_expression_and_in_at_or_is_refused_in_both(
    name: str, value: float
) -> None:
    text = f"{name}*{name} + 1"
    code, out = invoke(["grad", text, "--at", f"{name}={value!r}", "--json"])
    try:
        accepted = parse(text).variables == (name,)
    except ExprError:
        accepted = False
    if accepted:
        assert code == 0, out
        case = json.loads(out)["cases"][0]
        assert list(case["gradient"]["autograd"]) == [name]  # as typed, not NFKC-folded
        assert case["gradient"]["symbolic"][name] == 2 * value
    else:
        # Refused: one message for the expression, exit 2, no traceback.
        assert code == 2, out
        assert out.splitlines()[-1].startswith("Error: ") and "Traceback" not in out
    # --at judges the name as the expression does.
    _, at_out = invoke(["grad", "1", "--at", f"{name}={value!r}"])
    assert ("is not a variable name" in at_out) == (not is_name(name)), at_out


def test_the_unicode_property_covers_names_python_would_fold() -> None:
    # NFKC folds these (as Python's own identifiers do); the language keeps what was typed.
    for name in ("ℌ", "ﬁ", "xᵢ"):
        assert unicodedata.normalize("NFKC", name) != name
        code, out = invoke(["grad", f"{name}*{name} + 1", "--at", f"{name}=2", "--json"])
        assert code == 0, out
        assert list(json.loads(out)["cases"][0]["gradient"]["autograd"]) == [name]
