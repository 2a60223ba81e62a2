"""The expression language: a whitelist parser from math text to a small frozen AST.

Text never reaches ``eval``, ``exec``, ``sympify`` or ``lambdify``: it is tokenized, every name
and number is replaced by a placeholder (so ``ast.parse`` sees only placeholders, operators,
parentheses and commas), and the resulting Python AST is walked with an explicit stack
against a whitelist.  No module-level import of SymPy, NumPy or the engine: ``gradcheck
--help`` imports this module's table and must stay fast.
"""

from __future__ import annotations

import ast
import bisect
import difflib
import io
import math
import re
import tokenize
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "Expr",
    "ExprError",
    "FunctionDef",
    "Node",
    "parse",
    "postorder",
    "subtree_texts",
    "to_text",
]

MAX_LENGTH = 100_000
# Nesting depth of the tree, not counting left-associative chains such as a + b + c.  SymPy and
# CPython's own parser recurse, so the cap keeps both far from their recursion limits.
MAX_DEPTH = 100
# A constant exponent beyond this is refused: x**(10**10) or 9**9**9 would be expanded exactly
# by SymPy (hang, memory) and overflow float64 anyway.
MAX_EXPONENT = 10_000
# Upper bound on the size of an exact constant that SymPy could build (2**10000 is fine).
MAX_CONSTANT_BITS = 65_536


# ----------------------------------------------------------------------------------- errors


class ExprError(ValueError):
    """A malformed or refused expression: what is wrong and where (1-based column)."""

    def __init__(self, message: str, text: str = "", column: int = 1):
        super().__init__(message)
        self.message = message
        self.text = text
        self.column = max(1, int(column))

    def __str__(self) -> str:
        return f"{self.message} (column {self.column})"

    def caret(self) -> str:
        """The source line and a caret under the offending column."""
        line = _flatten(self.text)
        # Long inputs: show a window around the column so the caret line stays readable.
        start = max(0, self.column - 1 - 60)
        snippet = line[start : start + 120]
        prefix = "..." if start > 0 else ""
        suffix = "..." if start + 120 < len(line) else ""
        pad = len(prefix) + self.column - 1 - start
        return f"{prefix}{snippet}{suffix}\n{' ' * pad}^"


def _flatten(text: str) -> str:
    """One line, same length: every whitespace control character becomes a space."""
    return re.sub(r"[\t\n\r\f\v]", " ", text)


# ------------------------------------------------------------------------------ the table


@dataclass(frozen=True)
class FunctionDef:
    """One function of the language: its arities and every implementation, side by side.

    ``engine(E, *tensors)`` builds it from engine ops (E is the engine module),
    ``sympy(S, *exprs)`` from SymPy (S is symbolic's namespace: SymPy plus our kink-aware
    functions), ``scalar(m, *numbers)`` evaluates it with a math-like module m (math, cmath,
    mpmath), for finite differences and exact domain checks.  ``kink(*args)`` is true where
    the function is not differentiable; ``smooth`` is false when it has kinks at all (then
    the complex step is not valid).  ``domain`` is the human description used in messages.
    """

    name: str
    arity: tuple[int, ...]
    engine: Callable[..., Any]
    sympy: Callable[..., Any]
    scalar: Callable[..., Any]
    smooth: bool = True
    kink: Callable[..., bool] | None = None
    domain: str = ""


def _spelled_alike(name: str, **flags: Any) -> FunctionDef:
    """A function of one argument that the engine, SymPy and math-like modules all name
    `name`: one row, the same call in each."""

    def call(ns: Any, x: Any) -> Any:
        return getattr(ns, name)(x)

    call.__name__ = name
    return FunctionDef(name, (1,), call, call, call, **flags)


def _log(ns: Any, x: Any, b: Any = None) -> Any:
    """log(x), or log(x, b) = log(x) / log(b), in any of the three modules."""
    return ns.log(x) if b is None else ns.log(x) / ns.log(b)


def _sigmoid_scalar(m: Any, x: Any) -> Any:
    # Two branches so that neither overflows: exp of a large positive number never happens.
    if x.real >= 0:
        return 1 / (1 + m.exp(-x))
    z = m.exp(x)
    return z / (1 + z)


def _softplus_scalar(m: Any, x: Any) -> Any:
    if x.real > 0:
        return x + m.log1p(m.exp(-x))
    return m.log1p(m.exp(x))


def _softplus_engine(E: Any, x: Any) -> Any:
    # log1p(exp(x)) overflows for large x; above 40 softplus(x) == x in float64.  clamp's
    # gradient is 1 up to and including the bound and relu takes over beyond it, so the
    # lowering is smooth (unlike relu(x) + log1p(exp(-|x|)), whose gradient at 0 is 0).
    return E.log1p(E.exp(E.clamp(x, max=40.0))) + E.relu(x - 40.0)


def _relu_scalar(m: Any, x: Any) -> Any:
    return x if x > 0 else 0 * x


def _near_zero(a: Any) -> bool:
    return abs(a) <= _KINK_TOL


def _tie(a: Any, b: Any) -> bool:
    return abs(a - b) <= _KINK_TOL * max(1, abs(a), abs(b))


# A kink counts as "here" when its argument is zero up to float64 rounding of the inputs.
_KINK_TOL = 1e-13

FUNCTIONS: dict[str, FunctionDef] = {
    f.name: f
    for f in (
        _spelled_alike("sin"),
        _spelled_alike("cos"),
        _spelled_alike("tan", domain="cos(x) != 0"),
        _spelled_alike("asin", domain="-1 <= x <= 1"),
        _spelled_alike("acos", domain="-1 <= x <= 1"),
        _spelled_alike("atan"),
        _spelled_alike("sinh"),
        _spelled_alike("cosh"),
        _spelled_alike("tanh"),
        _spelled_alike("exp"),
        FunctionDef("log", (1, 2), _log, _log, _log, domain="x > 0; base b > 0, b != 1"),
        FunctionDef(
            "log1p",
            (1,),
            lambda E, x: E.log1p(x),
            lambda S, x: S.log(1 + x),
            lambda m, x: m.log1p(x),
            domain="x > -1",
        ),
        _spelled_alike("sqrt", kink=_near_zero, domain="x >= 0"),
        FunctionDef(
            "abs",
            (1,),
            lambda E, x: E.abs(x),
            lambda S, x: S.abs_(x),
            lambda m, x: m.fabs(x),
            smooth=False,
            kink=_near_zero,
        ),
        FunctionDef(
            "sigmoid",
            (1,),
            lambda E, x: E.sigmoid(x),
            lambda S, x: 1 / (1 + S.exp(-x)),
            _sigmoid_scalar,
        ),
        FunctionDef(
            "relu",
            (1,),
            lambda E, x: E.relu(x),
            lambda S, x: S.relu(x),
            _relu_scalar,
            smooth=False,
            kink=_near_zero,
        ),
        FunctionDef(
            "softplus", (1,), _softplus_engine, lambda S, x: S.log(1 + S.exp(x)), _softplus_scalar
        ),
        FunctionDef(
            "min",
            (2,),
            lambda E, a, b: E.minimum(a, b),
            lambda S, a, b: S.Min(a, b),
            lambda m, a, b: a if a <= b else b,
            smooth=False,
            kink=_tie,
        ),
        FunctionDef(
            "max",
            (2,),
            lambda E, a, b: E.maximum(a, b),
            lambda S, a, b: S.Max(a, b),
            lambda m, a, b: a if a >= b else b,
            smooth=False,
            kink=_tie,
        ),
    )
}

# Constant name in the text -> canonical name in the AST.
CONSTANTS: dict[str, str] = {"pi": "pi", "E": "E", "e": "E"}
CONSTANT_VALUES: dict[str, float] = {"pi": math.pi, "E": math.e}

# ------------------------------------------------------------------------------- the AST

_BINARY = ("+", "-", "*", "/", "**")
# Precedence for printing: atoms 6, ** 5 (right-assoc), unary minus 4, * / 3, + - 2.
_PREC = {"+": 2, "-": 2, "*": 3, "/": 3, "neg": 4, "**": 5}


@dataclass(frozen=True, eq=False, repr=False)
class Node:
    """One node: kind is num, const, var, neg, call or a binary operator (+ - * / **).

    ``value`` is the number, the constant, variable or function name; ``args`` the children;
    ``column`` the 1-based source column (not part of equality).  Equality and hashing are
    structural but never recursive: the hash is computed once from the children's hashes.
    """

    kind: str
    value: int | float | str | None = None
    args: tuple[Node, ...] = ()
    column: int = 0
    _hash: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        payload = (type(self.value).__name__, self.value) if self.kind == "num" else self.value
        h = hash((self.kind, payload, tuple(a._hash for a in self.args)))
        object.__setattr__(self, "_hash", h)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Node):
            return NotImplemented
        stack = [(self, other)]
        while stack:
            a, b = stack.pop()
            if a is b:
                continue
            if (
                a._hash != b._hash
                or a.kind != b.kind
                or a.value != b.value
                or type(a.value) is not type(b.value)
                or len(a.args) != len(b.args)
            ):
                return False
            stack.extend(zip(a.args, b.args, strict=True))
        return True

    def __repr__(self) -> str:
        return f"Node({to_text(self)!r})"


@dataclass(frozen=True, eq=False)
class Expr:
    """A parsed expression: the tree, its variables in order of first appearance, the text."""

    root: Node
    variables: tuple[str, ...]
    text: str

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Expr):
            return NotImplemented
        return self.root == other.root and self.variables == other.variables

    def __hash__(self) -> int:
        return hash((self.root, self.variables))

    @property
    def smooth(self) -> bool:
        """True when no function with kinks (abs, relu, min, max) appears."""
        return all(FUNCTIONS[str(n.value)].smooth for n in postorder(self.root) if n.kind == "call")


def postorder(root: Node) -> Iterator[Node]:
    """Each distinct subtree once, children before parents (iterative)."""
    seen: set[int] = set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, expanded = stack.pop()
        if id(node) in seen:
            continue
        if expanded or not node.args:
            seen.add(id(node))
            yield node
            continue
        stack.append((node, True))
        stack.extend((a, False) for a in reversed(node.args))


# ------------------------------------------------------------------------------ printing


def _format_number(value: int | float) -> str:
    return str(value) if isinstance(value, int) else repr(value)


def to_text(expr: Expr | Node) -> str:
    """Canonical text for a tree: parse(to_text(e)) == e."""
    root = expr.root if isinstance(expr, Expr) else expr
    return subtree_texts(root)[id(root)]


def subtree_texts(root: Node) -> dict[int, str]:
    """The canonical text of every distinct subtree, keyed by id(node), in one pass."""
    done: dict[int, tuple[str, int]] = {}
    for node in postorder(root):
        done[id(node)] = _print_node(node, [done[id(a)] for a in node.args])
    return {k: v[0] for k, v in done.items()}


def _print_node(node: Node, parts: list[tuple[str, int]]) -> tuple[str, int]:
    kind = node.kind
    if kind == "num":
        return _format_number(node.value), 6  # type: ignore[arg-type]
    if kind in ("var", "const"):
        return str(node.value), 6
    if kind == "call":
        return f"{node.value}({', '.join(p[0] for p in parts)})", 6
    if kind == "neg":
        text, prec = parts[0]
        return "-" + (text if prec >= _PREC["neg"] else f"({text})"), _PREC["neg"]
    (lt, lp), (rt, rp) = parts
    prec = _PREC[kind]
    if kind == "**":
        # Right-associative: the left side needs parentheses for anything but an atom.
        left = lt if lp > prec else f"({lt})"
        right = rt if rp >= prec else f"({rt})"
        return f"{left}**{right}", prec
    left = lt if lp >= prec else f"({lt})"
    # Left-associative: an equal-precedence right operand keeps its parentheses, and a
    # negated right operand gets them for readability (a - (-b), not a - -b).
    right = rt if rp > prec and node.args[1].kind != "neg" else f"({rt})"
    if kind in ("+", "-"):
        return f"{left} {kind} {right}", prec
    return f"{left}{kind}{right}", prec


# ------------------------------------------------------------------------------- parsing

_DECIMAL = re.compile(r"(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\Z")
_ALLOWED_OPS = {"+", "-", "*", "/", "**", "^", "(", ")", ","}
# Python words that users may type thinking they are operators.
_WORD_OPERATORS = {"and", "or", "not", "if", "else", "is", "in"}


@dataclass
class _Token:
    kind: str  # "num" | "name" | "op"
    text: str
    column: int  # 1-based


def parse(text: str) -> Expr:
    """Parse math text into an Expr, or raise ExprError saying what is wrong and where."""
    if not isinstance(text, str):
        raise ExprError(f"expected text, got {type(text).__name__}", "", 1)
    if len(text) > MAX_LENGTH:
        raise ExprError(
            f"expression too long ({len(text)} characters, limit {MAX_LENGTH})", text[:200], 1
        )
    flat = _flatten(text)
    if not flat.strip():
        raise ExprError("empty expression", text, 1)
    tokens = _tokenize(flat, text)
    _check_sequence(tokens, text)
    source, atoms, where = _placeholder_source(tokens)
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise _syntax_error(exc, where, text) from None
    except (RecursionError, MemoryError):
        # CPython's parser recurses over long operator chains; refuse rather than crash.
        raise ExprError(
            "expression too complex to parse (operator chain or nesting too long)", text, 1
        ) from None
    root = _build(tree.body, atoms, where, text)
    variables: list[str] = []
    seen: set[str] = set()
    # Order of first appearance in the text, so read the tokens rather than the tree.
    for tok in tokens:
        if tok.kind == "name" and tok.text not in FUNCTIONS and tok.text not in CONSTANTS:
            if tok.text not in seen:
                seen.add(tok.text)
                variables.append(tok.text)
    return Expr(root=root, variables=tuple(variables), text=text)


def _tokenize(flat: str, text: str) -> list[_Token]:
    """Our tokens (numbers, names, operators), with stray characters refused."""
    tokens: list[_Token] = []
    reader = tokenize.generate_tokens(io.StringIO(flat).readline)
    try:
        for tok in reader:
            col = tok.start[1] + 1
            if tok.type in (
                tokenize.NEWLINE,
                tokenize.NL,
                tokenize.ENDMARKER,
                tokenize.INDENT,
                tokenize.DEDENT,
            ):
                continue
            if tok.type == tokenize.NUMBER:
                tokens.append(_Token("num", tok.string, col))
            elif tok.type == tokenize.NAME:
                tokens.append(_Token("name", tok.string, col))
            elif tok.type == tokenize.OP:
                if tok.string not in _ALLOWED_OPS:
                    raise ExprError(f"unsupported operator '{tok.string}'", text, col)
                tokens.append(_Token("op", tok.string, col))
            elif tok.type == tokenize.ERRORTOKEN and not tok.string.strip():
                continue
            elif tok.type == tokenize.STRING or (
                tok.type == tokenize.ERRORTOKEN and tok.string in ("'", '"')
            ):
                raise ExprError("quotes are not allowed in an expression", text, col)
            else:
                raise ExprError(f"unexpected character '{tok.string[:1]}'", text, col)
    except tokenize.TokenError:
        # Raised at the end for an unclosed bracket: _check_sequence locates it precisely.
        pass
    except (SyntaxError, IndentationError) as exc:  # pragma: no cover - tokenizer edge cases
        raise ExprError("unreadable expression", text, (exc.offset or 1)) from None
    if not tokens:
        raise ExprError("empty expression", text, 1)
    return tokens


def _check_sequence(tokens: list[_Token], text: str) -> None:
    """Token-level checks that give better messages than Python's parser would."""
    for tok in tokens:
        if tok.kind == "name" and tok.text in _WORD_OPERATORS:
            raise ExprError(
                f"'{tok.text}' is not supported: use + - * / ** ^ and function calls",
                text,
                tok.column,
            )
    first, last = tokens[0], tokens[-1]
    if first.kind == "op" and first.text not in ("(", "-", "+"):
        raise ExprError(f"expression starts with '{first.text}'", text, first.column)
    if last.kind == "op" and last.text != ")":
        raise ExprError(
            f"expression ends unexpectedly after '{last.text}'",
            text,
            last.column + len(last.text),
        )
    opens: list[int] = []
    calls: list[bool] = []  # per open parenthesis: does it hold function arguments?
    for i, tok in enumerate(tokens):
        nxt = tokens[i + 1] if i + 1 < len(tokens) else None
        prev = tokens[i - 1] if i > 0 else None
        if tok.kind == "num":
            _number_value(tok, text)
        if tok.kind == "op" and tok.text == "(":
            is_call = prev is not None and prev.kind == "name" and prev.text in FUNCTIONS
            if _is_op(nxt, ")") and not is_call:
                raise ExprError("empty parentheses", text, tok.column)
            opens.append(tok.column)
            calls.append(is_call)
            if len(opens) > MAX_DEPTH:
                raise ExprError(
                    f"expression too deeply nested (limit {MAX_DEPTH} levels)", text, tok.column
                )
        elif tok.kind == "op" and tok.text == ")":
            if not opens:
                raise ExprError("unmatched ')'", text, tok.column)
            opens.pop()
            calls.pop()
        elif _is_op(tok, ",") and _is_op(nxt, ")"):
            raise ExprError("missing argument after ','", text, tok.column)
        elif _is_op(tok, ",") and not (calls and calls[-1]):
            raise ExprError(
                "unexpected ',' (commas only separate function arguments)", text, tok.column
            )
        if tok.kind == "name" and tok.text in FUNCTIONS and not _is_op(nxt, "("):
            raise ExprError(
                f"function '{tok.text}' needs parentheses, e.g. {tok.text}(x)", text, tok.column
            )
        if tok.kind == "name" and tok.text not in FUNCTIONS and _is_op(nxt, "("):
            raise _not_a_function(tok, text)
        ends_operand = tok.kind in ("num", "name") or _is_op(tok, ")")
        starts_operand = nxt is not None and (nxt.kind in ("num", "name") or _is_op(nxt, "("))
        if ends_operand and starts_operand and not (tok.kind == "name" and tok.text in FUNCTIONS):
            assert nxt is not None
            if tok.kind == "num" and nxt.kind == "num" and nxt.column == tok.column + len(tok.text):
                raise ExprError(f"malformed number '{tok.text}{nxt.text}'", text, tok.column)
            hint = _implicit_hint(tokens, i, text)
            raise ExprError(f"missing operator: did you mean {hint}?", text, nxt.column)
    if opens:
        raise ExprError("unclosed '('", text, opens[-1])


def _is_op(tok: _Token | None, text: str) -> bool:
    return tok is not None and tok.kind == "op" and tok.text == text


def _not_a_function(tok: _Token, text: str) -> ExprError:
    close = difflib.get_close_matches(tok.text, list(FUNCTIONS), n=1, cutoff=0.6)
    if close:
        return ExprError(
            f"unknown function '{tok.text}': did you mean {close[0]}?", text, tok.column
        )
    if tok.text in CONSTANTS:
        return ExprError(
            f"'{tok.text}' is a constant, not a function: did you mean {tok.text}*(...)?",
            text,
            tok.column,
        )
    return ExprError(
        f"unknown function '{tok.text}' (to multiply, write {tok.text}*(...))", text, tok.column
    )


def _implicit_hint(tokens: list[_Token], i: int, text: str) -> str:
    """The text around tokens i and i+1 with the missing '*' inserted."""
    left, right = tokens[i], tokens[i + 1]
    if left.kind != "op" and right.kind != "op":
        return f"{left.text}*{right.text}"
    flat = _flatten(text)
    fixed = flat[: right.column - 1].rstrip() + "*" + flat[right.column - 1 :]
    fixed = fixed.strip()
    if len(fixed) <= 60:
        return fixed
    cut = right.column - 1
    return "..." + flat[max(0, cut - 20) : cut].strip() + "*" + flat[cut : cut + 20].strip() + "..."


def _number_value(tok: _Token, text: str) -> int | float:
    """The value of a decimal literal; hex, underscores, complex and overflow are refused."""
    s = tok.text
    if s[-1:] in "jJ":
        raise ExprError(f"complex numbers are not supported: '{s}'", text, tok.column)
    if not _DECIMAL.match(s):
        raise ExprError(f"unsupported number '{s}' (write decimal numbers)", text, tok.column)
    if s.isdigit() and len(s) <= 15:
        return int(s)
    value = float(s)
    if math.isinf(value):
        raise ExprError(f"number too large: '{s}'", text, tok.column)
    if value.is_integer() and abs(value) < 1e15 and re.fullmatch(r"\d+", s):
        return int(value)
    return value


class _SourceMap:
    """Placeholder source offsets -> our tokens, for columns in messages (bisect, no scans)."""

    def __init__(self, tokens: list[_Token], starts: list[int]):
        self.tokens = tokens
        self.starts = starts  # increasing: start offset of each token in the source

    def token_at(self, offset: int) -> int:
        """Index of the token starting at or just before offset."""
        return max(0, bisect.bisect_right(self.starts, offset) - 1)

    def column(self, py: ast.AST) -> int:
        return self.tokens[self.token_at(getattr(py, "col_offset", 0))].column

    def operator_column(self, py: ast.BinOp) -> int:
        """Column of a binary operator: the first token after its left operand but ')'."""
        end = getattr(py.left, "end_col_offset", None)
        if end is None:
            return self.column(py)
        k = bisect.bisect_left(self.starts, end)
        while k < len(self.tokens) and _is_op(self.tokens[k], ")"):
            k += 1
        return self.tokens[min(k, len(self.tokens) - 1)].column


def _placeholder_source(tokens: list[_Token]) -> tuple[str, list[_Token], _SourceMap]:
    """Python source in which every name and number is a placeholder ``a<i>``.

    Returns the source, the atom tokens by placeholder index and the map back to columns.
    Only our placeholders and whitelisted operators reach ``ast.parse``; ``^`` becomes ``**``.
    """
    parts: list[str] = []
    atoms: list[_Token] = []
    starts: list[int] = []
    offset = 0
    for tok in tokens:
        if tok.kind == "op":
            piece = "**" if tok.text == "^" else tok.text
        else:
            piece = f"a{len(atoms)}"
            atoms.append(tok)
        starts.append(offset)
        parts.append(piece)
        offset += len(piece) + 1
    return " ".join(parts), atoms, _SourceMap(tokens, starts)


def _syntax_error(exc: SyntaxError, where: _SourceMap, text: str) -> ExprError:
    """A readable error for what Python's parser refused: the token it stopped at."""
    tok = where.tokens[where.token_at((exc.offset or 1) - 1)]
    return ExprError(f"unexpected '{tok.text}'", text, tok.column)


_AST_BINOPS: dict[type, str] = {
    ast.Add: "+",
    ast.Sub: "-",
    ast.Mult: "*",
    ast.Div: "/",
    ast.Pow: "**",
}


@dataclass(frozen=True)
class _Info:
    """What the builder knows about a subtree: nesting depth and, if constant, its size."""

    node: Node
    depth: int
    value: float | None  # float value of a variable-free subtree (inf/nan possible), else None
    bits: int  # bound on the bits of the exact rational SymPy would build (0 if symbolic)


def _build(tree: ast.AST, atoms: list[_Token], where: _SourceMap, text: str) -> Node:
    """Our Node tree from Python's AST, iteratively, refusing anything off the whitelist."""
    built: dict[int, _Info] = {}
    stack: list[tuple[ast.AST, bool]] = [(tree, False)]
    while stack:
        py, expanded = stack.pop()
        children = _ast_children(py)
        if not expanded and children:
            stack.append((py, True))
            stack.extend((c, False) for c in reversed(children))
            continue
        kids = [built.pop(id(c)) for c in children]
        info = _make_node(py, kids, atoms, where, text)
        if info.depth > MAX_DEPTH:
            raise ExprError(
                f"expression too deeply nested (limit {MAX_DEPTH} levels)", text, info.node.column
            )
        built[id(py)] = info
    return built[id(tree)].node


def _depth(kind: str, kids: list[_Info]) -> int:
    best = 0
    for k, child in enumerate(kids):
        # a + b + c nests to the left; counting it would cap the length of a plain sum.
        chain = (
            k == 0 and kind in ("+", "-", "*", "/") and _PREC[kind] == _PREC.get(child.node.kind)
        )
        best = max(best, child.depth if chain else child.depth + 1)
    return best


def _ast_children(py: ast.AST) -> list[ast.AST]:
    if isinstance(py, ast.BinOp):
        return [py.left, py.right]
    if isinstance(py, ast.UnaryOp):
        return [py.operand]
    if isinstance(py, ast.Call):
        return list(py.args)
    return []


def _make_node(
    py: ast.AST, kids: list[_Info], atoms: list[_Token], where: _SourceMap, text: str
) -> _Info:
    if isinstance(py, ast.Name):
        return _make_atom(atoms[int(py.id[1:])], text)
    args = [k.node for k in kids]
    if isinstance(py, ast.BinOp) and type(py.op) in _AST_BINOPS:
        op = _AST_BINOPS[type(py.op)]
        node = Node(op, None, tuple(args), column=where.operator_column(py))
        return _constant_info(node, kids, text)
    if isinstance(py, ast.UnaryOp) and isinstance(py.op, ast.USub):
        node = Node("neg", None, (args[0],), column=where.column(py))
        return _constant_info(node, kids, text)
    if isinstance(py, ast.UnaryOp) and isinstance(py.op, ast.UAdd):
        return kids[0]
    if isinstance(py, ast.Call):
        return _constant_info(_make_call(py, args, atoms, text), kids, text)
    raise ExprError("unsupported syntax", text, where.column(py))


def _make_atom(tok: _Token, text: str) -> _Info:
    if tok.kind == "num":
        value = _number_value(tok, text)
        # Floats become fixed-precision SymPy Floats: no exact growth to bound.
        bits = abs(value).bit_length() if isinstance(value, int) else 0
        return _Info(Node("num", value, column=tok.column), 1, float(value), bits)
    if tok.text in CONSTANTS:
        name = CONSTANTS[tok.text]
        return _Info(Node("const", name, column=tok.column), 1, CONSTANT_VALUES[name], 0)
    if tok.text in FUNCTIONS:  # pragma: no cover - _check_sequence refuses these first
        raise ExprError(f"function '{tok.text}' needs parentheses", text, tok.column)
    return _Info(Node("var", tok.text, column=tok.column), 1, None, 0)


def _make_call(py: ast.Call, kids: list[Node], atoms: list[_Token], text: str) -> Node:
    if not isinstance(py.func, ast.Name):  # pragma: no cover - refused at token level
        raise ExprError("only named functions can be called", text, 1)
    tok = atoms[int(py.func.id[1:])]
    fdef = FUNCTIONS.get(tok.text)
    if fdef is None:  # pragma: no cover - _check_sequence refuses these first
        raise ExprError(f"unknown function '{tok.text}'", text, tok.column)
    if py.keywords or any(isinstance(a, ast.Starred) for a in py.args):  # pragma: no cover
        raise ExprError(f"{tok.text}() takes plain arguments", text, tok.column)
    if len(kids) not in fdef.arity:
        want = " or ".join(str(n) for n in fdef.arity)
        plural = "" if fdef.arity == (1,) else "s"
        raise ExprError(
            f"{tok.text}() takes {want} argument{plural}, got {len(kids)}", text, tok.column
        )
    return Node("call", tok.text, tuple(kids), column=tok.column)


# ------------------------------------------------------------------- limits on constants


def _constant_info(node: Node, kids: list[_Info], text: str) -> _Info:
    """Depth, constant value and exact size of a new node; refuses huge powers."""
    depth = _depth(node.kind, kids)
    values = [k.value for k in kids]
    value = None if any(v is None for v in values) else _fold(node, values)  # type: ignore[arg-type]
    if node.kind == "call":
        # Transcendental values stay symbolic in SymPy: nothing to expand.
        return _Info(node, depth, value, 0)
    if node.kind != "**":
        return _Info(node, depth, value, sum(k.bits for k in kids))
    base, exponent = kids
    e = exponent.value
    if e is not None and not math.isnan(e) and abs(e) > MAX_EXPONENT:
        shown = to_text(exponent.node)
        shown = shown if len(shown) <= 30 else shown[:27] + "..."
        raise ExprError(
            f"exponent {shown} is too large (limit {MAX_EXPONENT} in magnitude)",
            text,
            node.column,
        )
    bits = base.bits
    if e is not None and not math.isnan(e) and float(e).is_integer():
        bits = base.bits * max(1, int(abs(e)))
    if bits > MAX_CONSTANT_BITS:
        raise ExprError(
            f"constant too large to compute exactly (about {bits} bits, limit {MAX_CONSTANT_BITS})",
            text,
            node.column,
        )
    return _Info(node, depth, value, bits)


def _fold(n: Node, args: list[float]) -> float:
    """Float value of an operation on constants: inf on overflow, nan where undefined."""
    try:
        if n.kind == "neg":
            return -args[0]
        if n.kind == "call":
            return float(FUNCTIONS[str(n.value)].scalar(math, *args).real)
        a, b = args
        if n.kind == "+":
            return a + b
        if n.kind == "-":
            return a - b
        if n.kind == "*":
            return a * b
        if n.kind == "/":
            return a / b
        return math.pow(a, b)
    except OverflowError:
        return math.inf
    except (ValueError, ZeroDivisionError, TypeError):
        return math.nan
