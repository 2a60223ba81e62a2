"""The `gradcheck` command: options in, one core call, a renderer, an exit code.

Startup matters (`gradcheck --help` runs in CI logs and shells): this module imports only
Click. SymPy, NumPy, the engine and Rich are imported inside the commands that need them.
"""

from __future__ import annotations

import gc
import math
import os
import re
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import IO, Any, NoReturn

import click

from gradcheck_cli.expr import is_name
from gradcheck_cli.schema import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT, MAX_JOBS, MAX_TIMEOUT

EXIT_OK = 0
EXIT_MISMATCH = 1
EXIT_INPUT = 2
EXIT_INTERNAL = 3  # pytest's code for "internal error": a bug in gradcheck, not in the input

MIN_MEMORY_MB = 256
STATUS_EXIT = {"pass": EXIT_OK, "fail": EXIT_MISMATCH, "error": EXIT_INPUT}


@dataclass
class App:
    """Settings shared by every command, built by the root group."""

    color: bool = True
    debug: bool = False
    signals: Any = None  # runner's guard: SIGINT/SIGTERM raise Interrupted, or wait for it

    def consoles(self) -> tuple[Any, Any]:
        """Rich consoles for stdout and stderr (Rich is imported only here, on demand)."""
        from gradcheck_cli.render import make_console

        return make_console(self.color), make_console(self.color, stderr=True)


class InputError(click.ClickException):
    """Bad input: one line saying what and where, optional context lines, exit 2."""

    exit_code = EXIT_INPUT

    def __init__(self, message: str, detail: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.detail = list(detail)

    def show(self, file: IO[Any] | None = None) -> None:
        """Print 'Error: ...' and the context lines to stderr."""
        ctx = click.get_current_context(silent=True)
        app = ctx.find_object(App) if ctx else None
        plain = (app is not None and not app.color) or bool(os.environ.get("NO_COLOR"))
        color = False if plain else None  # None: Click strips styles unless err is a terminal
        err = file or click.get_text_stream("stderr")
        click.echo(
            click.style("Error: ", fg="red", bold=True) + self.message, file=err, color=color
        )
        for line in self.detail:
            click.echo("  " + line, file=err, color=color)


class InternalError(click.ClickException):
    """An unexpected exception: a bug report hint instead of a traceback."""

    exit_code = EXIT_INTERNAL


class RootGroup(click.Group):
    """The root group: turns stray exceptions into one-line errors unless --debug."""

    def main(self, args: Any = None, *rest: Any, **options: Any) -> Any:
        """Run the command line; a process that runs it as its own (args from sys.argv: the
        console script, `python -m gradcheck_cli`) leaves without the collector's last walk."""
        if args is not None:  # CliRunner, or a caller embedding the command
            return super().main(args, *rest, **options)
        try:
            return super().main(args, *rest, **options)
        finally:
            # Interpreter shutdown runs the cyclic collector over every object still alive:
            # SymPy's, NumPy's and ours, 0.15-0.2 s of a 0.7 s `grad`, for no output. Frozen
            # objects are skipped; atexit, stream flushing and refcount teardown still run.
            gc.freeze()

    def invoke(self, ctx: click.Context) -> Any:
        """Run the subcommand; keep tracebacks for --debug; signals end it with 130 or 143."""
        from gradcheck_cli.signals import Interrupted, stop_signals

        try:
            with stop_signals() as guard:
                ctx.ensure_object(App).signals = guard
                return super().invoke(ctx)
        except Interrupted as exc:
            raise click.exceptions.Exit(exc.exit_code) from None
        except InputError as exc:
            if _debug(ctx):
                import traceback

                traceback.print_exception(exc.__cause__ or exc, file=sys.stderr)
            raise
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except BrokenPipeError:
            # `gradcheck check ... | head`: the reader left, so leave quietly; pointing stdout
            # at /dev/null stops Python's final flush from raising again (Python docs' recipe).
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            raise click.exceptions.Exit(EXIT_MISMATCH) from None
        except Exception as exc:
            if _debug(ctx):
                raise
            raise InternalError(
                f"internal error: {type(exc).__name__}: {exc} (run with --debug for the traceback)"
            ) from exc


def _debug(ctx: click.Context) -> bool:
    """Whether --debug was given (at the root or on the command)."""
    app = ctx.find_object(App)
    return bool(app and app.debug)


_LONG_OPTION = re.compile(r"--[^\W\d]\w*(?:-\w+)*(?:=.*)?", re.DOTALL)


class ExprCommand(click.Command):
    """A command whose EXPR may start with '-': `gradcheck grad -m*g*x/(k*T) --at ...`.

    An argument that starts with '-' but is none of the command's options is the expression,
    not an unknown option (Click would say "No such option: -m"). One that reads as a long
    option (`--name`, `--name=value`) stays an unknown option even when it could be a double
    negation (`--x`): a mistyped option must not become the expression; `--x*y` and `--(x)`
    cannot be options, so they are expressions.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        """Move a leading-minus expression behind '--', then parse as usual."""
        return super().parse_args(ctx, self._expression_last(ctx, list(args)))

    def _expression_last(self, ctx: click.Context, args: list[str]) -> list[str]:
        if "--" in args:
            return args
        names: set[str] = set()
        takes_value: set[str] = set()
        for param in self.get_params(ctx):
            if isinstance(param, click.Option):
                names.update(param.opts + param.secondary_opts)
                if not param.is_flag and not param.count:
                    takes_value.update(param.opts)
        i = 0
        while i < len(args):
            arg = args[i]
            if arg in takes_value:
                i += 2
                continue
            if (
                arg[:1] == "-"
                and arg not in ("-", "--")
                and arg.split("=", 1)[0] not in names
                and not _LONG_OPTION.fullmatch(arg)
            ):
                return [*args[:i], *args[i + 1 :], "--", arg]
            i += 1
        return args


class PointType(click.ParamType):
    """`x=3,y=2` -> {"x": 3.0, "y": 2.0}."""

    name = "point"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse NAME=VALUE pairs separated by commas."""
        if isinstance(value, dict):
            return value
        point: dict[str, float] = {}
        for part in str(value).split(","):
            part = part.strip()
            if not part:
                continue
            name, sep, number = part.partition("=")
            name = name.strip()
            if not sep:
                self.fail(f"{part!r} is not NAME=VALUE (for example x=3)", param, ctx)
            if not is_name(name):
                # The expression's own rule, so a name works in both places or in neither.
                base = name.rstrip("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺")
                hint = f": {name} means {base}**..., give --at {base}=..." if is_name(base) else ""
                self.fail(f"{name!r} is not a variable name (in {part!r}){hint}", param, ctx)
            if name in point:
                self.fail(f"{name} is given twice (in {value!r})", param, ctx)
            try:
                point[name] = float(number)
            except ValueError:
                self.fail(f"{number.strip()!r} is not a number (in {part!r})", param, ctx)
            if not math.isfinite(point[name]):
                self.fail(f"{name} must be a finite number, not {number.strip()}", param, ctx)
        if not point:
            self.fail("expected NAME=VALUE (for example x=3)", param, ctx)
        return point


class ShardType(click.ParamType):
    """`K/N` with 1 <= K <= N -> (K, N)."""

    name = "K/N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse and range-check a shard spec."""
        if isinstance(value, tuple):
            return value
        k_text, sep, n_text = str(value).partition("/")
        try:
            k, n = int(k_text), int(n_text)
        except ValueError:
            self.fail(f"{value!r} is not K/N (for example 1/4)", param, ctx)
        if not sep or n < 1 or not 1 <= k <= n:
            self.fail(f"{value!r}: need 1 <= K <= N (for example 1/4)", param, ctx)
        return k, n


class FiniteFloat(click.ParamType):
    """A finite number in [low, high] (NaN refused: it would make every check fail)."""

    name = "number"

    def __init__(self, low: float = 0.0, high: float = math.inf, low_open: bool = False):
        self.low, self.high, self.low_open = low, high, low_open

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        """Parse and range-check."""
        if isinstance(value, float):
            number = value
        else:
            try:
                number = float(str(value).strip())
            except ValueError:
                self.fail(f"{value!r} is not a number", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        below = number <= self.low if self.low_open else number < self.low
        if below or number > self.high:
            bound = ">" if self.low_open else ">="
            top = f" and <= {self.high:g}" if math.isfinite(self.high) else ""
            self.fail(f"{value!r}: need a number {bound} {self.low:g}{top}", param, ctx)
        return number


POINT = PointType()
SHARD = ShardType()
TOLERANCE = FiniteFloat()
DTYPE = click.Choice(["float32", "float64"])
FORMATS = ("table", "json", "junit", "github")  # of `check`


def _set_color(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """--no-color may be given before or after the command name."""
    if value:
        ctx.ensure_object(App).color = False


def _set_debug(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """--debug may be given before or after the command name."""
    if value:
        ctx.ensure_object(App).debug = True


def global_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """Accept the root's --no-color and --debug on every command as well."""
    command = click.option(
        "--no-color",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_color,
        help="Plain text: no colours or styles (also: NO_COLOR=1).",
    )(command)
    return click.option(
        "--debug",
        is_flag=True,
        expose_value=False,
        is_eager=True,
        callback=_set_debug,
        help="Show a traceback for errors.",
    )(command)


def python_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--allow-python, --path, --timeout: for cases that import and run the user's code."""
    command = click.option(
        "--timeout",
        type=FiniteFloat(0.0, MAX_TIMEOUT, low_open=True),
        default=DEFAULT_TIMEOUT,
        show_default=True,
        metavar="SECONDS",
        help="Time limit of each 'fn' case (a case's own 'timeout' key wins).",
    )(command)
    command = click.option(
        "--path",
        "paths",
        multiple=True,
        type=click.Path(exists=True, file_okay=False),
        metavar="DIR",
        help="Add DIR to the import path of 'fn' cases (repeatable).",
    )(command)
    return click.option(
        "--allow-python",
        is_flag=True,
        envvar="GRADCHECK_ALLOW_PYTHON",
        help="Import and run the Python callables that 'fn' cases name "
        "(also: GRADCHECK_ALLOW_PYTHON=1).",
    )(command)


def point_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """The repeatable --at option of grad and trace."""
    return click.option(
        "--at",
        "points",
        type=POINT,
        multiple=True,
        metavar="x=3[,y=2]",
        help="Where to evaluate; repeat or comma-separate for several variables.",
    )(command)


def merge_points(points: Iterable[dict[str, float]]) -> dict[str, float]:
    """Merge repeated --at values; the same variable twice is an error."""
    merged: dict[str, float] = {}
    for point in points:
        for name, value in point.items():
            if name in merged and merged[name] != value:
                raise click.BadParameter(
                    f"{name} is given twice ({merged[name]:g} and {value:g})", param_hint="'--at'"
                )
            merged[name] = value
    return merged


def parse_expression(text: str, point: dict[str, float]) -> Any:
    """Parse EXPR and check that --at names exactly its variables; exit 2 otherwise."""
    from gradcheck_cli.expr import ExprError, parse

    try:
        expr = parse(text)
    except ExprError as exc:
        raise InputError(
            f"expression, column {exc.column}: {exc.message}", exc.caret().splitlines()
        ) from exc
    variables = list(expr.variables)
    missing = [name for name in variables if name not in point]
    if missing:
        names = ", ".join(missing)
        example = ",".join(f"{name}=1" for name in missing)
        raise InputError(f"no value for {names}: add --at {example}")
    extra = [name for name in point if name not in variables]
    if extra:
        uses = ", ".join(variables) if variables else "no variables"
        raise InputError(f"--at {extra[0]}: {extra[0]} is not in the expression (it uses {uses})")
    # Keep the expression's variable order for tables and reports.
    return expr, {name: point[name] for name in variables}


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    """--version: the distribution's version, looked up only when asked for."""
    if not value or ctx.resilient_parsing:
        return
    from gradcheck_cli import __version__

    click.echo(f"gradcheck {__version__}")
    ctx.exit()


@click.group(cls=RootGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-V",
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show the version and exit.",
)
@click.option(
    "--no-color", is_flag=True, help="Plain text: no colours or styles (also: NO_COLOR=1)."
)
@click.option("--debug", is_flag=True, help="Show a traceback for errors.")
@click.pass_context
def main(ctx: click.Context, no_color: bool, debug: bool) -> None:
    """Gradients by autograd, SymPy and finite differences, side by side.

    \b
    Exit codes: 0 every check passed, 1 a gradient mismatch (or an error row in a
    batch), 2 bad input (expression, point, file or option).
    """
    app = ctx.ensure_object(App)
    app.color = app.color and not no_color and not os.environ.get("NO_COLOR")
    app.debug = app.debug or debug


@main.command(
    cls=ExprCommand, short_help="Gradient of EXPR: autograd, SymPy and finite differences."
)
@click.argument("expr")
@point_option
@click.option(
    "--order",
    type=click.IntRange(1, 2),
    default=1,
    show_default=True,
    help="2 also checks the Hessian.",
)
@click.option("--atol", type=TOLERANCE, help="Absolute tolerance.")
@click.option("--rtol", type=TOLERANCE, help="Relative tolerance.")
@click.option(
    "--dtype",
    type=DTYPE,
    default="float64",
    show_default=True,
    help="Precision of the engine's computation.",
)
@click.option("--graph", is_flag=True, help="Also print the traced graph.")
@click.option(
    "--steps", is_flag=True, help="Plot the finite-difference error against the step size."
)
@click.option(
    "--format",
    "form",
    type=click.Choice(["table", "json"]),
    default=None,
    help="The tables [default], or the JSON report (as --json).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report only.")
@global_options
@click.pass_obj
def grad(
    app: App,
    expr: str,
    points: tuple[dict[str, float], ...],
    order: int,
    atol: float | None,
    rtol: float | None,
    dtype: str,
    graph: bool,
    steps: bool,
    form: str | None,
    as_json: bool,
) -> None:
    """Value and gradient of EXPR by autograd, SymPy and finite differences.

    \b
    gradcheck grad 'x*x + 2*x + 1' --at x=3
    gradcheck grad 'sin(x)*exp(-y**2)' --at x=1,y=0.5 --order 2
    """
    as_json = _format_or_json(form, as_json, "table") == "json"
    if as_json and (graph or steps):
        flag = "--graph" if graph else "--steps"
        raise click.UsageError(f"{flag} adds to the tables; the JSON report has no place for it")
    parsed, point = parse_expression(expr, merge_points(points))
    from gradcheck_cli.checks import Case, run_case

    case = Case(expr=expr, points=(point,), atol=atol, rtol=rtol, order=order, dtype=dtype)
    [result] = run_case(case)
    if as_json:
        from gradcheck_cli.report import dumps_report

        click.echo(dumps_report([result]))
        _exit(STATUS_EXIT[result.status])
    from gradcheck_cli import render
    from gradcheck_cli.checks import show_formulas

    show_formulas(result, order)  # display formulas: only when shown
    out, _ = app.consoles()
    out.print(render.grad_view(result))
    if steps:
        from gradcheck_cli.trace import to_step_scans

        for scan in to_step_scans(parsed, point, result.gradient.get("symbolic", {}), dtype):
            out.print()
            out.print(render.v_plot(scan))
    if graph:
        out.print()
        out.print(render.trace_tree(_trace(parsed, expr, point, dtype)))
    _exit(STATUS_EXIT[result.status])


def _trace(parsed: Any, expr: str, point: dict[str, float], dtype: str) -> Any:
    """Lower and trace an already-validated expression."""
    from gradcheck_cli.trace import trace_expression

    return trace_expression(parsed, expr, point, dtype)


@main.command(cls=ExprCommand, short_help="The computational graph of EXPR, node by node.")
@click.argument("expr", metavar="EXPR | FILE::CASE")
@point_option
@click.option(
    "--format",
    "form",
    type=click.Choice(["tree", "mermaid", "dot", "json"]),
    default=None,
    help="Rich tree [default], Mermaid `graph TD`, Graphviz DOT, or the nodes as JSON.",
)
@click.option(
    "--dtype",
    type=DTYPE,
    default="float64",
    show_default=True,
    help="Precision of the engine's computation.",
)
@click.option("--json", "as_json", is_flag=True, help="The nodes as JSON (same as --format json).")
@python_options
@global_options
@click.pass_obj
def trace(
    app: App,
    expr: str,
    points: tuple[dict[str, float], ...],
    form: str | None,
    dtype: str,
    as_json: bool,
    allow_python: bool,
    paths: tuple[str, ...],
    timeout: float,
) -> None:
    """The computational graph of EXPR: op, value and gradient at every node.

    FILE::CASE traces a case of a batch file, by the id pytest shows for it (a 'fn'
    case needs --allow-python). The node whose own derivative is wrong is marked.

    \b
    gradcheck trace '(a + b) * (a * b)' --at a=2,b=3
    gradcheck trace 'x*x + 2*x + 1' --at x=3 --format mermaid
    gradcheck trace examples/ci/gradcheck.toml::log_cosh_loss --allow-python --path examples/ci
    """
    form = _format_or_json(form, as_json, "tree")
    reference = _case_reference(expr)
    if reference is not None:
        if points:
            raise InputError("--at goes with an expression; FILE::CASE brings its own inputs")
        graph = _trace_case(*reference, allow_python, paths, timeout)
    else:
        parsed, point = parse_expression(expr, merge_points(points))
        graph = _trace(parsed, expr, point, dtype)
    from gradcheck_cli import trace as tracing

    if form == "json":
        import json

        from gradcheck_cli.report import to_finite_json

        click.echo(json.dumps(to_finite_json(tracing.to_json_dict(graph)), indent=2))
    elif form == "mermaid":
        click.echo(tracing.to_mermaid(graph), nl=False)
    elif form == "dot":
        click.echo(tracing.to_dot(graph), nl=False)
    else:
        from gradcheck_cli import render

        out, _ = app.consoles()
        out.print(render.trace_tree(graph))


def _case_reference(text: str) -> tuple[str, str] | None:
    """('file.toml', 'case id') for 'file.toml::case id', else None (an expression)."""
    from gradcheck_cli.schema import SUFFIXES

    path, sep, name = text.partition("::")
    if not sep or os.path.splitext(path)[1].lower() not in SUFFIXES:
        return None
    return path, name


def _trace_case(
    path: str, name: str, allow_python: bool, paths: tuple[str, ...], timeout: float
) -> Any:
    """Trace one case of a batch file, found by its pytest id; exit 2 if it cannot run.

    A callable case is traced in a worker process, under the same limits as `check`.
    """
    from gradcheck_cli import batch, schema

    try:
        loaded = schema.load_file(path)
    except schema.BatchFileError as exc:
        raise InputError(str(exc)) from exc
    runs = {
        run_id: run
        for run_id, _, run in batch.split_points(
            schema.iter_items([loaded], allow_python=allow_python, paths=paths)
        )
    }
    # A case with one point may be named without its point, as in the batch file.
    prefix = [run_id for run_id in runs if run_id.startswith(name + "[")]
    if name not in runs and len(prefix) == 1:
        name = prefix[0]
    if name not in runs:
        hint = schema.suggest(name, runs)
        listed = ", ".join(list(runs)[:8]) + (", ..." if len(runs) > 8 else "")
        raise InputError(f"{path}: no case '{name}'{hint}; the cases are: {listed}")
    run = runs[name]
    if isinstance(run, schema.CaseProblem):
        raise InputError(run.message)
    if isinstance(run, schema.Case):
        [point] = run.points
        parsed, point = parse_expression(run.expr, point)
        return _trace(parsed, run.expr, point, run.dtype)
    from gradcheck_cli.callables import trace_case
    from gradcheck_cli.runner import Runner, RunOptions, WorkerLost

    limit = run.timeout if run.timeout is not None else timeout
    try:
        with Runner(RunOptions(timeout=limit)) as runner:
            return runner.call(trace_case, run, limit)
    except WorkerLost as exc:
        raise InputError(f"{run.location}: {exc}") from exc


@main.command(short_help="Batch checks from TOML, YAML or JSON files.")
@click.argument(
    "files",
    nargs=-1,
    required=True,
    metavar="FILE...",
    # For shell completion and `-`; what a path may not be, schema.py says (one line, exit 2).
    type=click.Path(allow_dash=True),
)
@click.option(
    "--format",
    "form",
    type=click.Choice(FORMATS),
    default=None,
    help="Report format [default: table]; github: the table, annotations and a job summary.",
)
@click.option("--json", "as_json", is_flag=True, help="The JSON report (same as --format json).")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, allow_dash=True),
    default=None,
    help="Write the report to FILE (replaced whole when the run ends); '-' is stdout.",
)
@click.option(
    "--junit",
    "junit_path",
    type=click.Path(dir_okay=False),
    default=None,
    metavar="PATH",
    help="Also write a JUnit report to PATH, whatever --format says.",
)
@click.option("--quiet", "-q", is_flag=True, help="Only failed and errored cases, and the summary.")
@click.option("--verbose", "-v", is_flag=True, help="Also the numbers of the cases that passed.")
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(0, MAX_JOBS),
    default=1,
    show_default=True,
    help="Parallel processes (0: one per CPU).",
)
@click.option("--fail-fast", "-x", is_flag=True, help="Stop at the first failure or error.")
@click.option(
    "--shard",
    type=SHARD,
    default=None,
    help="Run only shard K of N (case i goes to shard i mod N + 1).",
)
@click.option(
    "--max-memory",
    type=click.IntRange(0, 2**24),
    default=DEFAULT_MEMORY_MB,
    show_default=True,
    metavar="MB",
    help="Address-space limit of each worker running 'fn' cases (0: none).",
)
@python_options
@global_options
@click.pass_obj
def check(
    app: App,
    files: tuple[str, ...],
    form: str | None,
    as_json: bool,
    output: str | None,
    junit_path: str | None,
    quiet: bool,
    verbose: bool,
    jobs: int,
    fail_fast: bool,
    shard: tuple[int, int] | None,
    max_memory: int,
    allow_python: bool,
    paths: tuple[str, ...],
    timeout: float,
) -> None:
    """Batch checks from TOML, YAML or JSON files ('-': standard input).

    A file has an optional [defaults] table (atol, rtol, order, dtype, timeout) and
    [[case]] tables with expr, at (one point) or points (a list), and optionally name,
    expect (the gradient the author expects), atol, rtol, order and dtype.

    A case may name a Python callable instead: fn = "pkg.mod:func" with inputs (a list
    of { shape, dtype, low, high } or { values }), seed, order (2: gradgradcheck too),
    fast and timeout; its code is imported only with --allow-python (or
    GRADCHECK_ALLOW_PYTHON=1), in worker processes with a time and memory limit.

    \b
    gradcheck check examples/batch/*.toml
    gradcheck check cases.yaml --format junit -o report.xml --jobs 2 --shard 1/4
    gradcheck check gradcheck.toml --format github --junit gradcheck.xml   # in CI
    gradcheck check examples/ci/gradcheck.toml --allow-python --path examples/ci
    """
    from gradcheck_cli import batch, schema

    form = _report_format(form, as_json, output, quiet, verbose)
    if output == "-":
        output = None  # stdout, as without --output
    if 0 < max_memory < MIN_MEMORY_MB:
        raise click.BadParameter(
            f"{max_memory} MB is too little to run Python and NumPy (at least {MIN_MEMORY_MB},"
            " or 0 for no limit)",
            param_hint="'--max-memory'",
        )
    if files.count(schema.STDIN) > 1:
        raise click.BadParameter("'-' (standard input) can be read once", param_hint="'FILE'")
    if output is not None and junit_path is not None and _same_path(output, junit_path):
        raise click.BadParameter(
            f"{junit_path} is also --output: give each report its own file", param_hint="'--junit'"
        )
    for target, option in ((output, "--output"), (junit_path, "--junit")):
        if target is not None:
            _check_output(target, files, option)
    try:
        loaded = [schema.load_file(path) for path in files]
    except schema.BatchFileError as exc:
        raise InputError(str(exc)) from exc
    total = sum(len(f) for f in loaded)
    lines = {f.path: f.lines for f in loaded}

    def planned() -> Iterator[Any]:
        items = schema.iter_items(loaded, allow_python=allow_python, paths=paths)
        return batch.shard(items, *shard) if shard is not None else items

    if shard is not None:
        total = batch.shard_size(total, *shard)
    from gradcheck_cli import render, report
    from gradcheck_cli.junit import JUnitReport
    from gradcheck_cli.results import Outcome, error_rows
    from gradcheck_cli.runner import RunOptions
    from gradcheck_cli.signals import Interrupted

    options = RunOptions(
        jobs=jobs or os.cpu_count() or 1, timeout=timeout, memory_mb=max_memory, debug=app.debug
    )
    out, err = app.consoles()
    start = time.perf_counter()
    target = _open_output(output, "--output")
    stream = target.stream if target is not None else click.get_text_stream("stdout")
    junit_file = _open_output(junit_path, "--junit")
    verbosity = -1 if quiet else 1 if verbose else 0
    writer = _writer(form, stream, out if output is None else None, verbosity)
    writers = [writer]
    if junit_file is not None:
        writers.append(JUnitReport(junit_file.stream))
    sink = report.Tee(writers, lines)
    notes = [f"shard {shard[0]}/{shard[1]}"] if shard is not None else []
    stopped: Interrupted | None = None
    try:
        ran = _run_batch(sink, planned(), total, options, fail_fast, app, out, err)
    except Interrupted as exc:
        stopped, ran = exc, exc.ran
        unrun = [item for _, item in islice(planned(), ran, None)]
        names = ", ".join(printable_name(item) for item in unrun[:10])
        more = f" and {len(unrun) - 10} more" if len(unrun) > 10 else ""
        notes.append(
            f"interrupted by {exc.name}: {len(unrun)} of {total} cases not run ({names}{more})"
        )
        reason = f"not run: the run was interrupted by {exc.name}"
        for path, item in islice(planned(), ran, None):
            # The JSON report has no 'skipped' status: a case that did not run is an error
            # row there, as the contract says; JUnit marks it skipped.
            sink.not_run(Outcome(path, error_rows(item, reason), 0.0), reason, form == "json")
    else:
        if ran < total:
            notes.append(f"stopped by --fail-fast, {total - ran} of {total} cases not run")
            reason = "not run: stopped by --fail-fast"
            for path, item in islice(planned(), ran, None):
                sink.not_run(Outcome(path, error_rows(item, reason), 0.0), reason, False)
    seconds = time.perf_counter() - start
    files_out = [(f, name) for f, name in ((target, output), (junit_file, junit_path)) if f]
    on_screen = form in ("table", "github") and output is None
    try:
        sink.finish()
        if form == "table" and output is not None:  # a table in a file ends with its count
            summary = render.summary_line(writer.tally, seconds, "; ".join(notes))
            writer.console.print(summary, soft_wrap=True)
        for file, _ in files_out:
            # A partial run does not replace a whole one: the previous report stays.
            file.discard() if stopped is not None else file.commit()
    except OSError as exc:
        for file, _ in files_out:
            file.discard()
        raise InputError(f"cannot write the report: {exc.strerror}") from exc
    kinds = {id(target): form, id(junit_file): "junit"}
    if stopped is not None:
        notes += [f"{name} left as it was" for _, name in files_out]
    else:
        notes += [f"{kinds[id(f)]} report written to {name}" for f, name in files_out]
    summary = render.summary_line(writer.tally, seconds, "; ".join(notes))
    if on_screen:
        writer.console.print(summary, soft_wrap=True)
        if form == "github":
            try:
                writer.write_summary(summary.plain)
            except OSError as exc:
                err.print(f"warning: $GITHUB_STEP_SUMMARY: cannot write: {exc.strerror}")
    elif files_out or stopped is not None:
        # stdout holds a machine report (or nothing): the count goes to stderr.
        to_err = stopped is not None or output is None
        (err if to_err else out).print(summary, soft_wrap=True)
    if stopped is not None:
        _exit(stopped.exit_code)
    _exit(EXIT_OK if writer.tally.failed == 0 and writer.tally.errors == 0 else EXIT_MISMATCH)


def _format_or_json(form: str | None, as_json: bool, default: str) -> str:
    """--format, where --json is --format json; --json with another format is exit 2."""
    if as_json and form not in (None, "json"):
        raise click.UsageError(f"--json and --format {form} ask for two different reports")
    return "json" if as_json else form or default


def _report_format(
    form: str | None, as_json: bool, output: str | None, quiet: bool, verbose: bool
) -> str:
    """The report format from --format and --json; options that contradict it are exit 2."""
    form = _format_or_json(form, as_json, "table")
    if quiet and verbose:
        raise click.UsageError("--quiet and --verbose contradict each other: give one")
    if (quiet or verbose) and form in ("json", "junit"):
        flag = "--quiet" if quiet else "--verbose"
        raise click.UsageError(
            f"{flag} shapes the table; --format {form} reports every case in full"
        )
    if form == "github" and output not in (None, "-"):
        raise click.UsageError(
            "--format github writes to the job's log (stdout), not to --output; "
            "add --junit PATH for a report file"
        )
    return form


def _writer(form: str, stream: IO[str], console: Any, verbosity: int) -> Any:
    """The report writer of a format; the table goes to `console` (None: plain to stream)."""
    from gradcheck_cli import render, report

    if form == "json":
        return report.JsonReport(stream)
    if form == "junit":
        from gradcheck_cli.junit import JUnitReport

        return JUnitReport(stream)
    table = render.BatchTable(console or render.make_console(False, stream), verbosity)
    if form == "github":
        from gradcheck_cli.github import GithubReport

        return GithubReport(table, stream, os.environ.get("GITHUB_STEP_SUMMARY"))
    return table


def _same_path(a: str, b: str) -> bool:
    """Whether two report paths name one file (whether or not it exists yet)."""
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.abspath(a) == os.path.abspath(b)


def printable_name(item: Any) -> str:
    """A case's name for a one-line list, control characters escaped."""
    from gradcheck_cli.report import printable

    return printable(item.name or item.expr or "?")


def _check_output(output: str, files: Iterable[str], option: str = "--output") -> None:
    """Refuse, before anything runs, an --output that is an input, a directory or a device."""
    from gradcheck_cli.schema import special_kind

    try:
        info = os.stat(output)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise InputError(f"{option} {output}: {exc.strerror}") from exc
    kind = special_kind(info.st_mode)
    if kind is not None:
        raise InputError(f"{option} {output}: is {kind}; the report goes to a regular file")
    for path in files:
        try:
            same = os.path.samefile(path, output)
        except OSError:
            continue
        if same:
            raise InputError(f"{option} {output} is the batch file {path}: it would be overwritten")


def _open_output(output: str | None, option: str) -> Any:
    """The report file being written (None: none); exit 2 if it cannot be created."""
    if output is None:
        return None
    from gradcheck_cli.report import ReportFile

    try:
        return ReportFile(output)
    except OSError as exc:
        raise InputError(f"{option} {output}: cannot write: {exc.strerror}") from exc


def _run_batch(
    writer: Any,
    items: Iterable[Any],
    total: int,
    options: Any,
    fail_fast: bool,
    app: App,
    out: Any,
    err: Any,
) -> int:
    """Stream the items' outcomes into the report writer; return how many cases ran.

    On SIGINT or SIGTERM, Interrupted propagates with the count of cases that ran as its
    second argument, after every worker has been ended.
    """
    from gradcheck_cli import render
    from gradcheck_cli.runner import Runner
    from gradcheck_cli.signals import Interrupted

    ran = 0
    try:
        with render.batch_progress(out, err, total) as advance, Runner(options) as runner:
            outcomes = runner.run(items)
            try:
                for outcome in outcomes:
                    # A signal waits until the entry is written whole.
                    with app.signals.deferred():
                        writer.add(outcome)
                        ran += 1
                    advance(1)
                    if fail_fast and any(r.status != "pass" for r in outcome.results):
                        break
            finally:
                outcomes.close()
    except Interrupted as exc:
        raise Interrupted(exc.signum, ran) from None
    return ran


def _exit(code: int) -> NoReturn:
    """Leave with an exit code through Click, so CliRunner and the console script agree."""
    raise click.exceptions.Exit(code)
