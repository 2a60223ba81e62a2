"""Seed section 7: 4 accumulated mini-batches of 8 give the gradient of one batch of 32."""

import csv
from pathlib import Path

import engine as torch

IRIS_CSV = Path(__file__).resolve().parent / "data" / "iris.csv"
SPECIES = ["Iris-setosa", "Iris-versicolor", "Iris-virginica"]


def load_iris_sample(n: int = 32) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ``n`` rows of Iris spread evenly over the file: features and class indices."""
    with IRIS_CSV.open(newline="") as f:
        rows = list(csv.reader(f))[1:]
    picked = [rows[i * len(rows) // n] for i in range(n)]
    features = [[float(v) for v in row[:4]] for row in picked]
    labels = [SPECIES.index(row[4]) for row in picked]
    return torch.tensor(features), torch.tensor(labels)


class MyModel(torch.nn.Module):
    """A linear classifier: 4 measurements in, 3 species scores out."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x)


def make_dataloader(inputs: torch.Tensor, targets: torch.Tensor, batch_size: int = 8) -> list:
    """Split the data into consecutive (inputs, targets) mini-batches."""
    n = inputs.shape[0]
    starts = range(0, n, batch_size)
    return [(inputs[i : i + batch_size], targets[i : i + batch_size]) for i in starts]


def grads_of(model: torch.nn.Module) -> list[list[float]]:
    """Snapshot every parameter's gradient as nested lists."""
    return [p.grad.reshape(-1).tolist() for p in model.parameters()]


def same(a: list[list[float]], b: list[list[float]], scale: float = 1.0) -> bool:
    """True when ``a`` equals ``scale * b`` up to float32 rounding."""
    return all(
        abs(x - scale * y) <= 1e-5 * (1.0 + abs(scale * y))
        for row_a, row_b in zip(a, b, strict=True)
        for x, y in zip(row_a, row_b, strict=True)
    )


torch.manual_seed(0)
inputs, targets = load_iris_sample(32)
dataloader = make_dataloader(inputs, targets, batch_size=8)
model = MyModel()
criterion = torch.nn.CrossEntropyLoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
accumulation_steps = 4

# Reference: the gradient of one batch of all 32 samples.
optimizer.zero_grad()
criterion(model(inputs), targets).backward()
full_batch = grads_of(model)
print(f"one batch of {inputs.shape[0]}: bias gradient =", [round(g, 4) for g in full_batch[1]])

# Unscaled, each loss.backward() adds a whole mini-batch mean into .grad.
optimizer.zero_grad()
for i, (batch_inputs, batch_targets) in enumerate(dataloader):
    outputs = model(batch_inputs)
    loss = criterion(outputs, batch_targets)
    loss.backward()
    if (i + 1) % accumulation_steps == 0:
        summed = grads_of(model)
        optimizer.zero_grad()
print("4 x 8 accumulated, unscaled: equals 4 x the full batch:", same(summed, full_batch, 4.0))

# Scaling each mini-batch loss by 1/4 turns the sum of 4 means into the mean over 32.
loss_before = criterion(model(inputs), targets).item()
optimizer.zero_grad()  # Start fresh
for i, (batch_inputs, batch_targets) in enumerate(dataloader):
    outputs = model(batch_inputs)
    loss = criterion(outputs, batch_targets) / accumulation_steps

    # Gradients accumulate automatically!
    loss.backward()
    print(f"mini-batch {i + 1}: loss/4 = {loss.item():.4f}")

    # Update only every 4 batches
    if (i + 1) % accumulation_steps == 0:
        accumulated = grads_of(model)
        optimizer.step()
        optimizer.zero_grad()  # Reset for next cycle

print("4 x 8 accumulated, bias gradient =", [round(g, 4) for g in accumulated[1]])
print("4 x 8 accumulated, loss scaled by 1/4: same as one batch of 32:", end=" ")
print(same(accumulated, full_batch))
loss_after = criterion(model(inputs), targets).item()
print(f"loss on all 32 before the update: {loss_before:.4f}, after: {loss_after:.4f}")
