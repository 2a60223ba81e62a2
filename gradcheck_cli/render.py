"""Everything the user sees on a terminal; the only module that imports Rich."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Column, Table
from rich.text import Text
from rich.tree import Tree

from gradcheck_cli.report import SOURCES, detail_lines, fmt, fmt_error, fmt_point, printable
from gradcheck_cli.results import Tally
from gradcheck_cli.trace import node_blame, node_caption, node_detail, tree_rows

if TYPE_CHECKING:
    from gradcheck_cli.results import CaseResult, Outcome
    from gradcheck_cli.trace import StepScan, TraceGraph

STATUS_WORD = {"pass": "PASS", "fail": "FAIL", "error": "ERROR"}
STATUS_MARK = {"pass": "✓", "fail": "✗", "error": "!"}
STATUS_STYLE = {"pass": "bold green", "fail": "bold red", "error": "bold magenta"}
ERROR_NAMES = {
    "autograd_vs_symbolic": "autograd",
    "numeric_vs_symbolic": "numeric",
    "autograd_vs_expect": "autograd vs expected",
    "hessian_autograd_vs_symbolic": "Hessian autograd",
    "hessian_numeric_vs_symbolic": "Hessian numeric",
}
# Batches quicker than this finish before a progress bar would be worth its flicker.
PROGRESS_DELAY = 0.5


def make_console(color: bool = True, file: IO[str] | None = None, stderr: bool = False) -> Console:
    """A console; colour off means no escape codes at all, and pipes are plain anyway."""
    return Console(
        file=file,
        stderr=stderr,
        color_system="auto" if color else None,
        highlight=False,
        emoji=False,
        markup=False,
    )


def status_text(status: str) -> Text:
    """'✓ PASS' in green, '✗ FAIL' in red, '! ERROR' in magenta; readable without colour."""
    return Text(f"{STATUS_MARK[status]} {STATUS_WORD[status]}", style=STATUS_STYLE[status])


def _abs_diff(a: float | None, b: float | None) -> float | None:
    """|a - b| for display (0 for equal infinities), or None when either side is missing."""
    if a is None or b is None or isinstance(a, str) or isinstance(b, str):
        return None
    return 0.0 if a == b else abs(a - b)


Row = tuple[str, str, "float | None", str, "float | None", "float | None", "float | None"]


class FirstThatFits:
    """Render the first choice whose natural width fits the console, else the last one."""

    def __init__(self, *choices: RenderableType) -> None:
        self.choices = choices

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        """Pick by measuring each choice without a width limit."""
        unlimited = options.update(width=10_000)
        for choice in self.choices[:-1]:
            if Measurement.get(console, unlimited, choice).maximum <= options.max_width:
                yield choice
                return
        yield self.choices[-1]


def _three_way_table(title: str, label: str, rows: Sequence[Row]) -> RenderableType:
    """Autograd, SymPy (formula and value) and numeric side by side, with their errors.

    The formulas sit in the table when it fits the width, otherwise they are listed under it.
    """
    return FirstThatFits(_numbers_table(title, label, rows, True), _split_table(title, label, rows))


def _numbers_table(title: str, label: str, rows: Sequence[Row], inline: bool) -> Table:
    """The table of numbers, with or without the formula column."""
    estimates = any(row[6] is not None for row in rows)
    number = {"justify": "right", "no_wrap": True}
    columns = [Column(label, style="bold", no_wrap=True), Column("autograd", **number)]
    if inline:
        columns.append(Column("SymPy formula", no_wrap=True))
    columns += [Column("SymPy", **number), Column("numeric", **number)]
    if estimates:
        columns.append(Column("± est.", **number))
    columns += [Column("auto−sym", **number), Column("num−sym", **number)]
    table = Table(
        *columns,
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
        pad_edge=False,
    )
    for name, _, auto, formula, sym, num, estimate in rows:
        cells = [name, fmt(auto)] + ([formula] if inline else []) + [fmt(sym), fmt(num)]
        if estimates:
            cells.append(fmt_error(estimate) if estimate is not None else "")
        cells += [fmt_error(_abs_diff(auto, sym)), fmt_error(_abs_diff(num, sym))]
        table.add_row(*cells)
    return table


def _split_table(title: str, label: str, rows: Sequence[Row]) -> Group:
    """The table of numbers, then the formulas one per line."""
    formulas = Table.grid(padding=(0, 1))
    formulas.add_column(style="bold", no_wrap=True)
    formulas.add_column(overflow="fold")
    for row in rows:
        formulas.add_row(f"{row[1]} =", row[3])
    table = _numbers_table(title, label, rows, False)
    return Group(table, Text("SymPy formulas", style="bold"), formulas)


def gradient_table(result: CaseResult) -> RenderableType:
    """One row per variable: autograd, SymPy formula and value, finite differences, errors."""
    rows = [
        (
            name,
            f"d/d{name}",
            result.gradient.get("autograd", {}).get(name),
            result.derivative.get(name, "-"),
            result.gradient.get("symbolic", {}).get(name),
            result.gradient.get("numeric", {}).get(name),
            result.numeric_error.get(name),
        )
        for name in result.point
    ]
    return _three_way_table("gradient", "d/d", rows)


def hessian_table(result: CaseResult) -> RenderableType:
    """One row per pair of variables (upper triangle): the three second derivatives."""
    hessian = result.hessian or {}
    formulas = result.hessian_derivative or {}
    names = list(result.point)
    rows = []
    for i, a in enumerate(names):
        for b in names[i:]:
            auto, sym, num = (hessian.get(src, {}).get(a, {}).get(b) for src in SOURCES)
            formula = formulas.get(a, {}).get(b, "-")
            rows.append((f"{a},{b}", f"d²/d{a}d{b}", auto, formula, sym, num, None))
    return _three_way_table("Hessian", "d²/d·d·", rows)


def grad_view(result: CaseResult) -> RenderableType:
    """The whole `grad` screen for one point: value, tables, notes and the verdict."""
    parts: list[RenderableType] = []
    head = Text(printable(result.expr), style="bold")
    if result.point:
        head.append(f"  at {fmt_point(result.point)}")
    if result.value is not None:
        head.append("  =  ")
        head.append(fmt(result.value), style="bold cyan")
    parts.append(head)
    if result.gradient.get("autograd") or result.gradient.get("symbolic"):
        parts += [Text(), gradient_table(result)]
    if result.hessian:
        parts += [Text(), hessian_table(result)]
    parts.append(Text())
    for note in result.notes:
        parts.append(Text(f"note: {printable(note)}", style="yellow"))
    verdict = Text.assemble(status_text(result.status), "  ")
    if result.message:
        verdict.append(printable(result.message))
    elif result.status == "pass" and result.numeric_agrees is False:
        verdict.append("autograd and SymPy agree; the finite-difference estimate does not (notes)")
    elif result.status == "pass":
        verdict.append("autograd, SymPy and finite differences agree")
    errors = ", ".join(f"{ERROR_NAMES.get(k, k)} {fmt_error(v)}" for k, v in result.error.items())
    if errors:
        verdict.append(f"  (max error: {errors})", style="dim")
    parts.append(verdict)
    return Group(*parts)


def trace_tree(graph: TraceGraph) -> Tree:
    """The graph from output to leaves; a shared node is drawn once, then referenced."""
    rows = tree_rows(graph)
    root: Tree | None = None
    path: list[Tree] = []  # path[d] is the tree item at depth d on the current branch
    for row in rows:
        node = row.node
        label = Text(f"#{node.id} ", style="dim")
        if row.shown_before:
            label.append(printable(node.label), style="italic")
            label.append(f"  ↑ see #{node.id} above", style="dim")
        else:
            style = "bold green" if node.is_leaf else "bold"
            label.append(printable(node_caption(node)), style=style)
            label.append("   ")
            label.append(printable(node_detail(node)), style="cyan")
            if node.blame:
                label.append("   ")
                label.append(printable(node_blame(node)), style="bold red")
        if root is None:
            root = Tree(label, guide_style="dim")
            path = [root]
            continue
        item = path[row.depth - 1].add(label)
        del path[row.depth :]
        path.append(item)
    assert root is not None
    return root


def v_plot(scan: StepScan, height: int = 12) -> Text:
    """The finite-difference error against the step size, on log axes, chosen step marked."""
    steps, errors = scan.steps, scan.errors
    drawn = [i for i, e in enumerate(errors) if math.isfinite(e)]
    positive = [errors[i] for i in drawn if errors[i] > 0]
    # Exact zeros have no logarithm: they sit on the bottom row, drawn hollow.
    floor = min(positive) if positive else 1e-17
    logs = {i: math.log10(max(errors[i], floor)) for i in drawn}
    top = math.ceil(max(logs.values(), default=0.0))
    bottom = math.floor(min(logs.values(), default=-1.0))
    bottom = min(bottom, top - 1)
    rows = min(height, top - bottom + 1)
    per_row = (top - bottom) / (rows - 1)
    chosen = min(range(len(steps)), key=lambda i: abs(math.log10(steps[i] / scan.chosen)))
    cell = 2  # each step owns a blank and its mark; the first mark is 10 characters in
    grid = [[" "] * len(steps) for _ in range(rows)]
    for i, level in logs.items():
        grid[round((top - level) / per_row)][i] = "○" if errors[i] == 0 else "●"
    out = Text()
    out.append(
        f"finite-difference error |numeric − SymPy| for d/d{scan.variable}"
        f" at {fmt_point(scan.point)}\n",
        style="bold",
    )
    for r, line in enumerate(grid):
        out.append(f"{f'1e{round(top - r * per_row):+03d}':>7} ┤", style="dim")
        for i, mark in enumerate(line):
            out.append(" " + mark, style="bold yellow" if i == chosen else "")
        out.append("\n")
    out.append(" " * 8 + "└" + "─" * (len(steps) * cell + 1) + "\n", style="dim")
    labels = [" "] * (len(steps) * cell + 6)
    for i in range(0, len(steps), 4):
        for j, ch in enumerate(f"{steps[i]:.0e}"):
            labels[i * cell + 2 + j] = ch
    out.append(" " * 8 + "".join(labels).rstrip() + "  step h\n", style="dim")
    out.append(" " * (10 + chosen * cell) + "▲\n", style="bold yellow")
    out.append(f"▲ the checker's step h = {scan.chosen:.2g}", style="bold yellow")
    out.append(f" (error there {fmt_error(errors[chosen])})\n")
    out.append("right of the dip truncation error ∝ h², left of it round-off ∝ ε/h", style="dim")
    if any(e == 0 for e in errors):
        out.append("; ○ exactly 0", style="dim")
    return out


class BatchTable:
    """Streams batch results as fixed-width rows, one header per file, details under misses."""

    HEADERS = ("status", "case", "point", "value", "auto−sym", "num−sym")

    def __init__(self, console: Console) -> None:
        self.console = console
        self.tally = Tally()
        self._path: str | None = None

    def _row(self, cells: Sequence[Text | str], header: bool = False) -> Table:
        """A one-row grid with the same fixed columns as every other row."""
        width = self.console.width
        fixed = [8, 0, 18, 13, 9, 9]
        name_width = max(12, width - sum(fixed) - len(fixed))
        table = Table.grid(padding=(0, 1))
        for i, w in enumerate(fixed):
            table.add_column(
                width=w or name_width,
                no_wrap=True,
                overflow="ellipsis",
                justify="right" if i >= 3 else "left",
                style="bold" if header else None,
            )
        table.add_row(*cells)
        return table

    def add(self, outcome: Outcome) -> None:
        """Print the rows of one case."""
        if outcome.path != self._path:
            self._path = outcome.path
            self.console.print(Text(printable(outcome.path), style="bold underline"))
            self.console.print(self._row(self.HEADERS, header=True))
        for result in outcome.results:
            self.tally.add(result.status)
            autograd_err = result.error.get("autograd_vs_symbolic")
            numeric_err = result.error.get("numeric_vs_symbolic")
            self.console.print(
                self._row(
                    (
                        status_text(result.status),
                        printable(result.name),
                        fmt_point(result.point) or getattr(result, "shapes", ""),
                        fmt(result.value),
                        fmt_error(autograd_err),
                        fmt_error(numeric_err),
                    )
                )
            )
            if result.status != "pass":
                self._details([printable(line) for line in detail_lines(result)])

    def _details(self, lines: Sequence[str]) -> None:
        """The explanation under a failed row, indented past the status column.

        Lines that start with a space are preformatted columns (gradcheck's table of worst
        elements): they are printed whole, never wrapped into a jumble, at any width.
        """
        wrapped: list[str] = []
        for line in [*lines, ""]:
            if line.startswith(" ") or not line:
                if wrapped:
                    self.console.print(
                        Group(
                            *(
                                Padding(Text(w, style="dim"), (0, 0, 0, 9), expand=False)
                                for w in wrapped
                            )
                        )
                    )
                    wrapped = []
                if line:
                    self.console.print(Text(" " * 9 + line, style="dim"), soft_wrap=True)
            else:
                wrapped.append(line)


def to_plain_table(outcomes: Sequence[Outcome], width: int = 100, summary: bool = False) -> str:
    """The batch table of `gradcheck check` as plain text (pytest and assert messages)."""
    import io

    stream = io.StringIO()
    console = Console(
        file=stream, width=width, color_system=None, highlight=False, emoji=False, markup=False
    )
    table = BatchTable(console)
    for outcome in outcomes:
        table.add(outcome)
    if summary:
        console.print(summary_line(table.tally, sum(o.seconds for o in outcomes)), soft_wrap=True)
    # Rich pads every wrapped line to the width; trailing blanks are noise in a message.
    return "\n".join(line.rstrip() for line in stream.getvalue().splitlines()) + "\n"


def summary_line(tally: Tally, seconds: float, extra: str = "") -> Text:
    """'3 passed, 1 failed, 1 error in 0.52s' coloured by the worst outcome."""
    parts = [f"{tally.passed} passed"]
    if tally.failed:
        parts.append(f"{tally.failed} failed")
    if tally.errors:
        parts.append(f"{tally.errors} error" + ("s" if tally.errors != 1 else ""))
    style = "bold red" if tally.failed else "bold magenta" if tally.errors else "bold green"
    text = Text(", ".join(parts) + f" in {seconds:.2f}s", style=style)
    if extra:
        text.append(f" ({printable(extra)})", style="dim")
    return text


@contextmanager
def batch_progress(out: Console, err: Console, total: int) -> Iterator[Callable[[int], None]]:
    """Yield `advance(n)`; a bar appears only on a terminal and only if the batch is slow."""
    console = out if out.is_terminal else err
    if not console.is_terminal or total < 2:
        yield lambda n=1: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = Progress(
        "checking",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        redirect_stdout=False,
        redirect_stderr=False,
    )
    task = progress.add_task("checking", total=total)
    start = time.monotonic()
    started = False

    def advance(n: int = 1) -> None:
        nonlocal started
        progress.advance(task, n)
        if not started and time.monotonic() - start > PROGRESS_DELAY:
            progress.start()
            started = True

    try:
        yield advance
    finally:
        if started:
            progress.stop()
