"""Training with engine.optim: the seed's gradient-accumulation claim, and PyTorch parity."""

import copy
import csv
from pathlib import Path

import numpy as np
import pytest

import engine
from engine import nn

IRIS_CSV = Path(__file__).resolve().parents[3] / "examples" / "data" / "iris.csv"


def as_np(t: engine.Tensor) -> np.ndarray:
    return np.array(t.detach().numpy(), dtype=np.float64)


def small_model(dtype=engine.float64) -> nn.Module:
    engine.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8, dtype=dtype), nn.Tanh(), nn.Linear(8, 3, dtype=dtype))


def batch_of_32() -> tuple[engine.Tensor, engine.Tensor]:
    rng = np.random.default_rng(0)
    return engine.tensor(rng.normal(size=(32, 4))), engine.tensor(rng.integers(0, 3, size=32))


def train(model, optimizer, batches, steps: int = 3, scale: bool = True) -> None:
    """``steps`` optimizer steps, each accumulating every batch in ``batches``."""
    criterion = nn.CrossEntropyLoss()
    for _ in range(steps):
        optimizer.zero_grad()
        for inputs, targets in batches:
            loss = criterion(model(inputs), targets)
            (loss / len(batches) if scale else loss).backward()
        optimizer.step()


OPTIMIZERS = {
    "sgd-momentum": lambda ps: engine.optim.SGD(ps, lr=0.1, momentum=0.9),
    "adam": lambda ps: engine.optim.Adam(ps, lr=0.01),
}


@pytest.mark.parametrize("name", OPTIMIZERS)
def test_four_accumulated_batches_of_8_update_like_one_batch_of_32(name):
    x, y = batch_of_32()
    one_batch = small_model()
    accumulated = copy.deepcopy(one_batch)
    train(one_batch, OPTIMIZERS[name](one_batch.parameters()), [(x, y)])
    quarters = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)]
    train(accumulated, OPTIMIZERS[name](accumulated.parameters()), quarters)
    moved = False
    for (key, a), b in zip(one_batch.state_dict().items(), accumulated.parameters(), strict=True):
        np.testing.assert_allclose(as_np(a), as_np(b), rtol=1e-10, atol=1e-12, err_msg=key)
        moved |= not np.allclose(as_np(a), as_np(small_model().state_dict()[key]))
    assert moved


def test_without_the_one_quarter_scale_the_sgd_update_is_four_times_larger():
    x, y = batch_of_32()
    start = small_model()
    one_batch, unscaled = copy.deepcopy(start), copy.deepcopy(start)
    train(one_batch, engine.optim.SGD(one_batch.parameters(), lr=0.1), [(x, y)], steps=1)
    quarters = [(x[i : i + 8], y[i : i + 8]) for i in range(0, 32, 8)]
    train(unscaled, engine.optim.SGD(unscaled.parameters(), lr=0.1), quarters, 1, scale=False)
    for p0, p1, p4 in zip(
        start.parameters(), one_batch.parameters(), unscaled.parameters(), strict=True
    ):
        np.testing.assert_allclose(
            as_np(p4) - as_np(p0), 4 * (as_np(p1) - as_np(p0)), rtol=1e-9, atol=1e-12
        )


def load_iris() -> tuple[np.ndarray, np.ndarray]:
    with IRIS_CSV.open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    names = sorted({r[4] for r in rows})
    x = np.array([[float(v) for v in r[:4]] for r in rows], dtype=np.float32)
    x = (x - x.mean(0)) / x.std(0)
    return x, np.array([names.index(r[4]) for r in rows])


@pytest.mark.parametrize(
    ("name", "config"),
    [("SGD", {"lr": 0.1, "momentum": 0.9}), ("Adam", {"lr": 0.01})],
)
def test_training_matches_torch_step_by_step(name, config):
    torch = pytest.importorskip("torch")
    x, y = load_iris()
    engine.manual_seed(3)
    ours = nn.Sequential(
        nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)
    )
    theirs = torch.nn.Sequential(
        torch.nn.Linear(4, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 16),
        torch.nn.ReLU(),
        torch.nn.Linear(16, 3),
    )
    # Same starting point: our initial weights, copied into torch's model.
    theirs.load_state_dict({k: torch.tensor(v.numpy()) for k, v in ours.state_dict().items()})
    opt_ours = getattr(engine.optim, name)(ours.parameters(), **config)
    opt_theirs = getattr(torch.optim, name)(theirs.parameters(), **config)
    loss_ours_fn, loss_theirs_fn = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    order = np.random.default_rng(0).permutation(len(x))
    losses = []
    for step in range(20):
        index = order[(step * 30) % 150 :][:30]
        opt_ours.zero_grad()
        opt_theirs.zero_grad()
        loss_ours = loss_ours_fn(ours(engine.tensor(x[index])), engine.tensor(y[index]))
        loss_theirs = loss_theirs_fn(theirs(torch.tensor(x[index])), torch.tensor(y[index]))
        loss_ours.backward()
        loss_theirs.backward()
        opt_ours.step()
        opt_theirs.step()
        losses.append((loss_ours.item(), loss_theirs.item()))
    ours_l, theirs_l = np.array(losses).T
    np.testing.assert_allclose(ours_l, theirs_l, rtol=1e-5)
    assert theirs_l[-1] < 0.5 * theirs_l[0]  # the comparison covers real training
    for (key, a), b in zip(ours.state_dict().items(), theirs.state_dict().values(), strict=True):
        np.testing.assert_allclose(as_np(a), b.numpy(), rtol=1e-4, atol=1e-5, err_msg=key)
