"""Everything the user sees on a terminal; the only module that imports Rich."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import IO, TYPE_CHECKING

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, Group, RenderableType, RenderResult
from rich.measure import Measurement
from rich.padding import Padding
from rich.table import Column, Table
from rich.text import Text
from rich.tree import Tree

from gradcheck_cli.report import SOURCES, detail_lines, fmt, fmt_error, fmt_point, printable
from gradcheck_cli.results import Tally

if TYPE_CHECKING:
    from engine.autograd.gradcheck import JacobianMismatch
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
# The batch table's point column folds down to this width before a case name is folded;
# below MIN_FOLD characters nothing is readable any more.
POINT_MIN = 6
MIN_FOLD = 4
COLUMN_GAP = 2  # one space would run a case's name into its point
STATUS_WIDTH = 7  # '! ERROR': every file's table starts its names in the same column
DETAIL_INDENT = 2  # the explanation of a failed case, under its heading
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

    The formulas sit in the table when it fits the width, otherwise they are listed under it;
    narrower still (60 columns), each derivative gets three rows, one per source, so that no
    number is ever cut.
    """
    return FirstThatFits(
        _numbers_table(title, label, rows, True),
        _split_table(title, label, rows),
        _with_formulas(_long_table(title, label, rows), rows),
    )


def _titled_table(title: str, columns: Sequence[Column]) -> Table:
    """The frame of every derivative table: a bold title, a rule under the header."""
    return Table(
        *columns,
        title=title,
        title_justify="left",
        title_style="bold",
        box=box.SIMPLE_HEAD,
        show_edge=False,
        padding=(0, 1, 0, 0),
        pad_edge=False,
    )


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
    table = _titled_table(title, columns)
    for name, _, auto, formula, sym, num, estimate in rows:
        cells = [name, fmt(auto)] + ([formula] if inline else []) + [fmt(sym), fmt(num)]
        if estimates:
            cells.append(fmt_error(estimate) if estimate is not None else "")
        cells += [fmt_error(_abs_diff(auto, sym)), fmt_error(_abs_diff(num, sym))]
        table.add_row(*cells)
    return table


def _long_table(title: str, label: str, rows: Sequence[Row]) -> Table:
    """The numbers one source per row: autograd, SymPy, numeric, each with its error."""
    estimates = any(row[6] is not None for row in rows)
    number = {"justify": "right", "no_wrap": True}
    columns: list[Column] = [
        Column(label, style="bold", no_wrap=True),
        Column("by", no_wrap=True),
        Column("value", **number),
        Column("vs SymPy", **number),
    ]
    if estimates:
        columns.append(Column("± est.", **number))
    table = _titled_table(title, columns)
    for name, _, auto, _, sym, num, estimate in rows:
        table.add_row(name, "autograd", fmt(auto), fmt_error(_abs_diff(auto, sym)))
        table.add_row("", "SymPy", fmt(sym), "")
        extra = [fmt_error(estimate) if estimate is not None else ""] if estimates else []
        table.add_row("", "numeric", fmt(num), fmt_error(_abs_diff(num, sym)), *extra)
    return table


def _with_formulas(table: Table, rows: Sequence[Row]) -> Group:
    """A table of numbers, then the SymPy formulas one per line."""
    formulas = Table.grid(padding=(0, 1))
    formulas.add_column(style="bold", no_wrap=True)
    formulas.add_column(overflow="fold")
    for row in rows:
        formulas.add_row(f"{row[1]} =", row[3])
    return Group(table, Text("SymPy formulas", style="bold"), formulas)


def _split_table(title: str, label: str, rows: Sequence[Row]) -> Group:
    """The table of numbers, then the formulas one per line."""
    return _with_formulas(_numbers_table(title, label, rows, False), rows)


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
    # Here, not at the top: `gradcheck grad` without --graph draws no tree.
    from gradcheck_cli.trace import node_blame, node_caption, node_detail, tree_rows

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
    """Batch results as one table per file, sized from its content, then the misses explained.

    A file's rows are collected until the next file (or `finish`) so that Rich can size the
    columns from what they hold: numbers keep their width and are never cut, names and
    points wrap at word boundaries when the width is short. Under the table, each failed or
    errored case gets its explanation at the full width of the console.
    """

    HEADERS = ("status", "case", "point", "value", "auto−sym", "num−sym")

    def __init__(self, console: Console, verbosity: int = 0) -> None:
        self.console = console
        self.verbosity = verbosity  # -1: only misses (--quiet); 1: details of passes too
        self.tally = Tally()
        self._path: str | None = None
        self._results: list[CaseResult] = []
        self._printed = False

    def add(self, outcome: Outcome) -> None:
        """Collect the rows of one case (a file's table is printed when the file is done)."""
        if outcome.path != self._path:
            self._flush()
            self._path = outcome.path
        for result in outcome.results:
            self.tally.add(result.status)
            self._results.append(result)

    def finish(self) -> None:
        """Print what is still collected."""
        self._flush()

    def _flush(self) -> None:
        shown = [r for r in self._results if self.verbosity >= 0 or r.status != "pass"]
        if self._path is None or not shown:
            self._path, self._results = None, []
            return
        if self._printed:
            self.console.print()
        self._printed = True
        self.console.print(Text(printable(self._path), style="bold underline"))
        self.console.print(batch_table(shown, self.console.width))
        for result in shown:
            if result.status != "pass" or self.verbosity > 0:
                self.console.print()
                self.console.print(case_details(result))
        self._path, self._results = None, []


def _row_cells(result: CaseResult) -> tuple[Text, str, str, str, str, str]:
    """The cells of one result's row in the batch table."""
    return (
        status_text(result.status),
        printable(result.name),
        fmt_point(result.point) or getattr(result, "shapes", ""),
        fmt(result.value),
        fmt_error(result.error.get("autograd_vs_symbolic")),
        fmt_error(result.error.get("numeric_vs_symbolic")),
    )


def batch_table(results: Sequence[CaseResult], width: int) -> Table:
    """One row per result: status, case, point, value and the two errors.

    Rich sizes the columns from their content. Numbers keep the width of their longest cell,
    so they are never cut. When the table would be wider than `width`, the case and point
    columns share what is left: names stay whole where they can, both wrap at word
    boundaries (folding only a word longer than the column), never into an ellipsis.
    """
    rows = [_row_cells(result) for result in results]
    headers = BatchTable.HEADERS
    widths = [max(len(h), *(cell_len(str(row[i])) for row in rows)) for i, h in enumerate(headers)]
    widths[0] = STATUS_WIDTH
    fixed = widths[0] + sum(widths[3:]) + COLUMN_GAP * (len(headers) - 1)
    flexible = width - fixed
    name, point = widths[1], widths[2]
    if name + point > flexible:
        # The point column gets its longest entry ('w=-0.3618417408,') if the names can
        # still keep their longest word; names take the rest, whole if they fit.
        words = max((cell_len(w) for row in rows for w in row[1].split()), default=MIN_FOLD)
        entries = max((cell_len(w) for row in rows for w in row[2].split()), default=MIN_FOLD)
        point = max(POINT_MIN, min(entries, flexible - words))
        if name + point <= flexible:
            point = flexible - name
        name = max(MIN_FOLD, flexible - point)
        point = max(MIN_FOLD, point)
    # Narrower still: the numbers fold rather than be cropped at the edge of the screen.
    fits = flexible >= name + point
    table = Table(
        Column(headers[0], no_wrap=True, width=STATUS_WIDTH),
        Column(headers[1], overflow="fold", width=name),
        Column(headers[2], overflow="fold", width=point),
        *(
            Column(header, justify="right", no_wrap=fits, overflow="fold")
            for header in headers[3:]
        ),
        box=None,
        show_edge=False,
        padding=(0, COLUMN_GAP, 0, 0),
        pad_edge=False,
        header_style="bold",
    )
    for row in rows:
        table.add_row(*row)
    return table


def mismatch_table(mismatch: JacobianMismatch) -> RenderableType:
    """The worst elements of a failing Jacobian block as a table sized from its content.

    One row per element where it fits; narrower (60 columns), two rows per element (the
    values, then their error and estimate), so that no number is cut or wrapped.
    """
    which = "projection" if mismatch.projected else "output, input"
    number = {"justify": "right", "no_wrap": True}
    caption = f"scale of the Jacobian {mismatch.scale:.3g}"

    def frame(*columns: Column) -> Table:
        return Table(*columns, box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1, 0, 0),
                     pad_edge=False, caption=caption, caption_justify="left",
                     caption_style="dim", header_style="bold")

    wide = frame(Column(which, overflow="fold", min_width=8), Column("analytic", **number),
                 Column("numeric", **number), Column("error", **number),
                 Column("estimate", **number))
    narrow = frame(Column(which, overflow="fold", min_width=8), Column("analytic", **number),
                   Column("numeric", **number))
    for w in mismatch.worst:
        analytic, numeric = f"{w.analytic:.8g}", f"{w.numeric:.8g}"
        error, estimate = f"{w.error:.3g}", f"{w.estimate:.3g}"
        wide.add_row(w.index, analytic, numeric, error, estimate)
        narrow.add_row(w.index, analytic, numeric)
        narrow.add_row("", Text(f"error {error}", style="dim"),
                       Text(f"estimate {estimate}", style="dim"))
    return FirstThatFits(wide, narrow)


def case_details(result: CaseResult) -> RenderableType:
    """Why a case failed or errored: its heading, then message, numbers and notes."""
    head = Text.assemble(status_text(result.status), "  ", (printable(result.name), "bold"))
    where = fmt_point(result.point) or getattr(result, "shapes", "")
    if where:
        head.append(f"  {where}")
    body: list[RenderableType] = [head]
    mismatch: JacobianMismatch | None = getattr(result, "mismatch", None)
    # The notes carry the worst elements as preformatted text (for the reports); here they
    # are laid out as a table from the data instead.
    columns = {line for line in mismatch.lines() if line.startswith(" ")} if mismatch else set()
    for line in detail_lines(result):
        if line in columns:
            if mismatch is not None:
                body.append(Padding(mismatch_table(mismatch), (0, 0, 0, DETAIL_INDENT),
                                    expand=False))
                mismatch = None
            continue
        line = printable(line)
        # Lines that start with a space are preformatted columns (a case's output): printed
        # whole, never wrapped into a jumble.
        if line.startswith(" "):
            text = Text(line, style="dim", no_wrap=True, overflow="ignore")
        else:
            text = Text(line, style="dim", overflow="fold")
        body.append(Padding(text, (0, 0, 0, DETAIL_INDENT), expand=False))
    return Group(*body)


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
    table.finish()
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
