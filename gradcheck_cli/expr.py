"""The expression language: a whitelist parser from math text to a small frozen AST.

What each operator and function means lives in one place, gradcheck_cli/table.py; this module
reads its names, arities and printing column, and folds constants with its ``scalar`` column.

Text never reaches ``eval``, ``exec``, ``sympify`` or ``lambdify``: it is tokenized, every name
and number is replaced by a placeholder (so ``ast.parse`` sees only placeholders, operators,
parentheses and commas), and the resulting Python AST is walked with an explicit stack
against a whitelist.  No module-level import of SymPy, NumPy or the engine: ``gradcheck
--help`` imports this module's table and must stay fast.
"""

from __future__ import annotations

import ast
import bisect
import io
import math
import re
import tokenize
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

from gradcheck_cli.table import (
    ATOM_PREC,
    FUNCTIONS,
    MATH,
    OPERATORS,
    ROWS,
    SPELLINGS,
    UNSUPPORTED,
    OpRow,
    canonical,
)

__all__ = [
    "CONSTANTS",
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_EXPONENT",
    "MAX_LENGTH",
    "OPERATORS",
    "ROWS",
    "Expr",
    "ExprError",
    "Node",
    "OpRow",
    "fold",
    "is_name",
    "literal_value",
    "parse",
    "postorder",
    "row_of",
    "subtree_texts",
    "suggest",
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


# -------------------------------------------------------------------------- constants

# Constant name in the text -> canonical name in the AST.
CONSTANTS: dict[str, str] = {"pi": "pi", "E": "E", "e": "E"}
CONSTANT_VALUES: dict[str, float] = {"pi": math.pi, "E": math.e}

# ------------------------------------------------------------------------------- the AST


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
        """True when every operation is analytic (no abs, relu, min, max...): complex step."""
        return all(row_of(n).smooth for n in postorder(self.root) if n.args)


def row_of(node: Node) -> OpRow:
    """The table row of an interior node: its operator, or the function it calls."""
    return ROWS[str(node.value) if node.kind == "call" else node.kind]


T = TypeVar("T")


def fold(
    root: Node,
    leaf: Callable[[Node], T],
    interior: Callable[[OpRow, Node, list[T]], T],
    done: dict[int, T] | None = None,
) -> dict[int, T]:
    """Every distinct subtree's value, keyed by id(node): ``leaf`` for numbers, constants and
    variables, ``interior(row, node, child values)`` for the rest (iterative, postorder).

    ``done`` is filled as the fold goes, so ``interior`` may read any finished descendant.
    """
    done = {} if done is None else done
    for node in postorder(root):
        if node.args:
            done[id(node)] = interior(row_of(node), node, [done[id(a)] for a in node.args])
        else:
            done[id(node)] = leaf(node)
    return done


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
    done = fold(root, _print_leaf, lambda row, node, parts: row.text(parts))
    return {k: v[0] for k, v in done.items()}


def _print_leaf(node: Node) -> tuple[str, int]:
    if node.kind == "num":
        return _format_number(node.value), ATOM_PREC  # type: ignore[arg-type]
    return str(node.value), ATOM_PREC


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
    for i, tok in enumerate(tokens):
        if tok.kind == "name" and _calls(tokens, i):
            tok.kind = "call"
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
        if tok.kind == "name" and tok.text not in CONSTANTS:
            if tok.text not in seen:
                seen.add(tok.text)
                variables.append(tok.text)
    return Expr(root=root, variables=tuple(variables), text=text)


_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
_SUPERSCRIPT_RUN = re.compile("[⁻⁺]?[⁰¹²³⁴⁵⁶⁷⁸⁹]+")
_NAME = re.compile(r"[^\W\d]\w*")


def is_name(text: str) -> bool:
    """Whether text is a variable name of the language (a Unicode identifier, x₁ included;
    superscript digits are powers, so x² is not a name but x**2; the word operators such as
    `if` and `and` are refused, as the expression refuses them)."""
    return _is_identifier(text) and text not in _WORD_OPERATORS


def _is_identifier(text: str) -> bool:
    return bool(_NAME.fullmatch(text)) and not _SUPERSCRIPT_RUN.search(text)


def _expand_superscripts(flat: str) -> tuple[str, list[int] | None]:
    """x² -> x**(2), x⁻¹ -> x**(-1); with the original column of every new character."""
    if not _SUPERSCRIPT_RUN.search(flat):
        return flat, None
    parts: list[str] = []
    columns: list[int] = []
    last = 0
    for match in _SUPERSCRIPT_RUN.finditer(flat):
        parts.append(flat[last : match.start()])
        columns.extend(range(last + 1, match.start() + 1))
        power = f" **({match.group().translate(_SUPERSCRIPTS)}) "
        parts.append(power)
        columns.extend([match.start() + 1] * len(power))
        last = match.end()
    parts.append(flat[last:])
    columns.extend(range(last + 1, len(flat) + 2))
    return "".join(parts), columns


def _tokenize(flat: str, text: str) -> list[_Token]:
    """Our tokens (numbers, names, operators), with stray characters refused."""
    tokens: list[_Token] = []
    source, columns = _expand_superscripts(flat)
    reader = tokenize.generate_tokens(io.StringIO(source).readline)
    try:
        for tok in reader:
            start = tok.start[1]
            col = start + 1 if columns is None else columns[min(start, len(columns) - 1)]
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
                # A word operator is a name here: _check_sequence explains why it is refused.
                if not _is_identifier(tok.string):
                    raise ExprError(f"'{tok.string}' is not a name", text, col)
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
            is_call = prev is not None and prev.kind == "name" and prev.text in SPELLINGS
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
        spelled = tok.kind == "name" and tok.text in SPELLINGS
        starts_operand = nxt is not None and (nxt.kind in ("num", "name") or _is_op(nxt, "("))
        # The contract's functions are never variables; the newer spellings (erf, sign, ln...)
        # are variables unless called, so that expressions using them as names keep working.
        if spelled and not _is_op(nxt, "(") and (tok.text in _CONTRACT_FUNCTIONS or starts_operand):
            raise ExprError(
                f"function '{tok.text}' needs parentheses, e.g. {tok.text}(x)", text, tok.column
            )
        if tok.kind == "name" and not spelled and _is_op(nxt, "("):
            raise _not_a_function(tok, text)
        ends_operand = tok.kind in ("num", "name") or _is_op(tok, ")")
        if ends_operand and starts_operand and not spelled:
            assert nxt is not None
            if tok.kind == "num" and nxt.kind == "num" and nxt.column == tok.column + len(tok.text):
                raise ExprError(f"malformed number '{tok.text}{nxt.text}'", text, tok.column)
            hint = _implicit_hint(tokens, i, text)
            raise ExprError(f"missing operator: did you mean {hint}?", text, nxt.column)
    if opens:
        raise ExprError("unclosed '('", text, opens[-1])


def _is_op(tok: _Token | None, text: str) -> bool:
    return tok is not None and tok.kind == "op" and tok.text == text


# The functions CONTRACT §2 lists: their bare names are errors, never variables.
_CONTRACT_FUNCTIONS = frozenset(
    "sin cos tan asin acos atan sinh cosh tanh exp log log1p sqrt abs sigmoid relu softplus "
    "min max".split()
)


def _calls(tokens: list[_Token], i: int) -> bool:
    """Whether name token i calls a function (a known spelling followed by '(')."""
    return tokens[i].text in SPELLINGS and i + 1 < len(tokens) and _is_op(tokens[i + 1], "(")


def suggest(name: str) -> str | None:
    """The one spelling a mistyped function name is a near miss of, or None.

    A name that is itself a known function elsewhere (acot, sech) gets no suggestion: the
    user who accepts one would check a different formula.  Case slips (Sin, LOG) are fixed;
    otherwise the closest spelling must be close (ratio >= 0.8) and strictly closest.
    """
    if name in SPELLINGS or name in UNSUPPORTED:
        return None
    folded = [s for s in SPELLINGS if s.lower() == name.lower()]
    if len(folded) == 1:
        return folded[0]
    import difflib  # only a mistake needs it: not at the top, for one-shot startup

    scores = sorted(
        ((difflib.SequenceMatcher(None, name, s).ratio(), s) for s in SPELLINGS), reverse=True
    )
    (best, spelling), (second, _) = scores[0], scores[1]
    return spelling if best >= 0.8 and best > second else None


def _not_a_function(tok: _Token, text: str) -> ExprError:
    if tok.text in CONSTANTS:
        return ExprError(
            f"'{tok.text}' is a constant, not a function: did you mean {tok.text}*(...)?",
            text,
            tok.column,
        )
    if tok.text in UNSUPPORTED:
        return ExprError(
            f"unknown function '{tok.text}': {UNSUPPORTED[tok.text]}", text, tok.column
        )
    close = suggest(tok.text)
    if close:
        return ExprError(
            f"unknown function '{tok.text}': did you mean {close}?", text, tok.column
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
            k == 0
            and kind in ("+", "-", "*", "/")
            and child.node.kind in ("+", "-", "*", "/")
            and ROWS[kind].prec == ROWS[child.node.kind].prec
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
    return _Info(Node("var", tok.text, column=tok.column), 1, None, 0)


def _make_call(py: ast.Call, kids: list[Node], atoms: list[_Token], text: str) -> Node:
    if not isinstance(py.func, ast.Name):  # pragma: no cover - refused at token level
        raise ExprError("only named functions can be called", text, 1)
    tok = atoms[int(py.func.id[1:])]
    name = canonical(tok.text)
    if name is None:  # pragma: no cover - _check_sequence refuses these first
        raise ExprError(f"unknown function '{tok.text}'", text, tok.column)
    row = ROWS[name]
    if py.keywords or any(isinstance(a, ast.Starred) for a in py.args):  # pragma: no cover
        raise ExprError(f"{tok.text}() takes plain arguments", text, tok.column)
    if not row.accepts(len(kids)):
        raise ExprError(
            f"{tok.text}() takes {row.arity_text()}, got {len(kids)}", text, tok.column
        )
    for k in row.fixed:
        if k < len(kids) and literal_value(kids[k]) is None:
            raise ExprError(
                f"{tok.text}()'s argument {k + 1} must be a number", text, kids[k].column
            )
    if row.operator:  # power(x, 2) is x**2
        return Node(row.name, None, tuple(kids), column=tok.column)
    return Node("call", name, tuple(kids), column=tok.column)


def literal_value(node: Node) -> int | float | None:
    """The number a literal argument stands for (2, -0.5), or None for anything else."""
    sign = 1
    while node.kind == "neg":
        sign, node = -sign, node.args[0]
    if node.kind == "num":
        return sign * node.value  # type: ignore[operator]
    return None


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
        return float(row_of(n).scalar(MATH, *args))
    except OverflowError:
        return math.inf
    except (ValueError, ZeroDivisionError, TypeError):
        return math.nan
