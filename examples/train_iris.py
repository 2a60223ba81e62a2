"""Train a small MLP on the Iris data set with mini-batches and gradient accumulation.

Shows a Rich progress bar while training and draws the loss curve in the terminal; when the
output is not a terminal (or NO_COLOR is set) both fall back to plain text.

    python examples/train_iris.py [--epochs 60] [--batch-size 16] [--accumulation-steps 2]
"""

from __future__ import annotations

import argparse
import csv
import time
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.text import Text

import engine as torch
from engine import nn

IRIS_CSV = Path(__file__).resolve().parent / "data" / "iris.csv"


def load_iris(path: Path = IRIS_CSV) -> tuple[torch.Tensor, torch.Tensor, list[str]]:
    """Read the CSV: a (150, 4) float tensor, (150,) class indices and the class names."""
    with path.open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    names = sorted({row[4] for row in rows})
    features = torch.tensor([[float(v) for v in row[:4]] for row in rows])
    labels = torch.tensor([names.index(row[4]) for row in rows])
    return features, labels, names


def standardize(x: torch.Tensor) -> torch.Tensor:
    """Scale every column to mean 0 and standard deviation 1."""
    mean = x.mean(dim=0, keepdim=True)
    std = ((x - mean) ** 2).mean(dim=0, keepdim=True).sqrt()
    return (x - mean) / std


def build_model(hidden: int, num_classes: int) -> nn.Module:
    """A 4 -> hidden -> hidden -> classes MLP with ReLU activations."""
    return nn.Sequential(
        nn.Linear(4, hidden),
        nn.ReLU(),
        nn.Linear(hidden, hidden),
        nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows whose highest-scoring class is the label."""
    with torch.no_grad():
        predicted = model(x).numpy().argmax(axis=1)
    return float((predicted == y.numpy()).mean())


def train_epoch(
    model: nn.Module,
    criterion: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    accumulation_steps: int,
) -> float:
    """One pass over shuffled mini-batches, stepping every ``accumulation_steps``; mean loss."""
    n = x.shape[0]
    # Shuffle with the engine's generator so engine.manual_seed makes runs repeatable.
    order = torch.tensor(torch.rand(n).numpy().argsort())
    starts = list(range(0, n, batch_size))
    total = 0.0
    optimizer.zero_grad()
    for i, start in enumerate(starts):
        index = order[start : start + batch_size]
        loss = criterion(model(x[index]), y[index])
        total += loss.item() * index.shape[0]
        # Scaling by 1/accumulation_steps makes the summed gradients a mean over the group.
        (loss / accumulation_steps).backward()
        if (i + 1) % accumulation_steps == 0 or i + 1 == len(starts):
            optimizer.step()
            optimizer.zero_grad()
    return total / n


def loss_curve(losses: list[float], width: int = 60, height: int = 10) -> list[Text]:
    """Draw ``losses`` (one per epoch) as a text chart with a labelled y axis."""
    columns = min(width, len(losses))
    # Each column shows the mean loss of its share of the epochs.
    edges = np.linspace(0, len(losses), columns + 1).astype(int)
    values = [float(np.mean(losses[a:b])) for a, b in zip(edges[:-1], edges[1:], strict=True)]
    top, bottom = max(values), min(values)
    span = (top - bottom) or 1.0
    rows = [[" "] * columns for _ in range(height)]
    for col, value in enumerate(values):
        rows[round((top - value) / span * (height - 1))][col] = "*"
    lines = []
    for r, row in enumerate(rows):
        label = f"{top - span * r / (height - 1):7.3f}" if r in (0, height - 1) else " " * 7
        line = Text()
        line.append(label + " |", style="dim")
        line.append("".join(row), style="bold cyan")
        lines.append(line)
    lines.append(Text(" " * 8 + "+" + "-" * columns, style="dim"))
    first, last = "epoch 1", f"epoch {len(losses)}"
    gap = columns - len(first) - len(last)
    axis = first + " " * gap + last if gap > 0 else f"epochs 1 to {len(losses)}"
    lines.append(Text(" " * 9 + axis, style="dim"))
    return lines


def main(argv: list[str] | None = None) -> int:
    """Train, report progress and the loss curve, and print the final training accuracy."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--accumulation-steps", type=int, default=2)
    parser.add_argument("--lr", type=float, default=0.01)
    parser.add_argument("--hidden", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    console = Console()
    torch.manual_seed(args.seed)
    features, labels, names = load_iris()
    x = standardize(features)
    model = build_model(args.hidden, len(names))
    criterion = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    console.print(f"Iris: {x.shape[0]} rows, {x.shape[1]} features, classes {', '.join(names)}")
    console.print(model)
    console.print(
        f"mini-batches of {args.batch_size}, {args.accumulation_steps} accumulated per step "
        f"(effective batch {args.batch_size * args.accumulation_steps}), Adam lr={args.lr}"
    )

    losses: list[float] = []
    started = time.perf_counter()
    # On a terminal a live bar; otherwise (logs, pipes) a plain line every tenth of the run.
    live = console.is_terminal
    progress = Progress(
        TextColumn("[bold]training"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.4f}  accuracy {task.fields[acc]:.1%}"),
        TimeElapsedColumn(),
        console=console,
        disable=not live,
    )
    with progress:
        task = progress.add_task("epochs", total=args.epochs, loss=float("nan"), acc=0.0)
        for epoch in range(1, args.epochs + 1):
            losses.append(
                train_epoch(
                    model,
                    criterion,
                    optimizer,
                    x,
                    labels,
                    args.batch_size,
                    args.accumulation_steps,
                )
            )
            acc = accuracy(model, x, labels)
            progress.update(task, advance=1, loss=losses[-1], acc=acc)
            if not live and (epoch % max(1, args.epochs // 10) == 0 or epoch == args.epochs):
                console.print(
                    f"epoch {epoch:4d}/{args.epochs}  loss {losses[-1]:.4f}  accuracy {acc:.1%}"
                )
    elapsed = time.perf_counter() - started

    console.print("training loss per epoch:")
    for line in loss_curve(losses):
        console.print(line)
    acc = accuracy(model, x, labels)
    correct = round(acc * x.shape[0])
    console.print(f"final training accuracy: {acc:.2%} ({correct}/{x.shape[0]})")
    console.print(f"trained {args.epochs} epochs in {elapsed:.2f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
