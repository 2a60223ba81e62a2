"""A user's script written with the seed tutorial's API, for `mypy --strict` (see test_typing).

Every expression here must have a precise type: a public function or attribute of `engine`
that returned `Any` would make `--disallow-any-expr` report this file.
"""

from __future__ import annotations

from typing import assert_type

import engine as torch
from engine import Tensor, nn, optim

# 1. Automatic differentiation
x = torch.tensor(3.0, requires_grad=True)
y = x * x + 2 * x + 1
y.backward()
grad: Tensor | None = x.grad
print(y, grad)

# 2. The computational graph
a = torch.tensor(2.0, requires_grad=True)
b = torch.tensor(3.0, requires_grad=True)
c = a + b
d = a * b
e = c * d
e.backward()
print(a.grad, b.grad, e.grad_fn)

# 3. requires_grad
weights = torch.tensor([1.0, 2.0], requires_grad=True)
inputs = torch.tensor([3.0, 4.0])
output = (weights * inputs).sum()
output.backward()
tracked: bool = weights.requires_grad
print(weights.grad, inputs.grad, tracked)

# 4. Leaf tensors
x = torch.tensor(3.0, requires_grad=True)
h = x * 2
h.retain_grad()
z = h * h
z.backward()
leaf: bool = h.is_leaf
print(x.grad, h.grad, leaf, h.retains_grad)

# 5. Backpropagation and the chain rule
x = torch.tensor(2.0, requires_grad=True)
h = x + 1
y = h**2
y.backward()
print(x.grad)

# 6. Zeroing gradients
x = torch.tensor(3.0, requires_grad=True)
y1 = x * 2
y1.backward()
if x.grad is not None:
    x.grad.zero_()
y2 = x * 3
y2.backward()
value: float = y2.item()
print(x.grad, value)

# The training loop, and 7. gradient accumulation
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1))
criterion = nn.MSELoss()
optimizer = optim.SGD(model.parameters(), lr=0.1)
data = torch.randn(32, 4)
targets = torch.randn(32, 1)
optimizer.zero_grad()
for i in range(4):
    batch = data[i * 8 : (i + 1) * 8]
    outputs: Tensor = model(batch)
    loss: Tensor = criterion(outputs, targets[i * 8 : (i + 1) * 8]) / 4
    loss.backward()
optimizer.step()
optimizer.zero_grad()
with torch.no_grad():
    prediction = model(data)
shape: tuple[int, ...] = tuple(prediction.shape)
print(shape, [p.shape for p in model.parameters()])
w = torch.tensor(2.0, requires_grad=True)
(dw,) = torch.autograd.grad(w**3, [w])
print(dw)

# Beyond the tutorial: methods engine attaches at import time, decorators, optimizers.
assert_type(x.exp().sum(), Tensor)
assert_type(data.max(), Tensor)
values, indices = data.max(dim=1)
assert_type(values, Tensor)
assert_type(data.size(0), int)
layer = nn.Linear(4, 2)
assert_type(layer(data), Tensor)
assert_type(layer.weight, nn.Parameter)
adam = optim.Adam(layer.parameters(), lr=1e-3)
adam.step()


@torch.no_grad()
def evaluate(m: nn.Module, t: Tensor) -> Tensor:
    return t.sum()


assert_type(evaluate(layer, data), Tensor)
assert_type(torch.is_grad_enabled(), bool)
head = torch.nn.Linear(2, 1)
sgd = torch.optim.SGD(head.parameters(), lr=0.1, momentum=0.9)
assert_type(head(torch.ones(3, 2)), Tensor)
sgd.zero_grad()
assert_type(model.eval(), nn.Sequential)
assert_type(layer.train().requires_grad_(True), nn.Linear)


def closure() -> Tensor:
    adam.zero_grad()
    out = layer(data).pow(2).mean()
    out.backward()
    return out


assert_type(adam.step(closure), Tensor)
top = torch.max(data, 1)
assert_type(top.values, Tensor)
assert_type(torch.sort(data, descending=True).indices, Tensor)
assert_type(torch.topk(data, 2).values, Tensor)
assert_type(torch.nonzero(data > 0), Tensor)
assert_type(torch.nonzero(data > 0, as_tuple=True), tuple[Tensor, ...])
handle = w.register_hook(lambda g: g * 2)
handle.remove()
ones = torch.ones([2, 3], dtype=torch.float64)
assert_type(torch.Tensor([1.0, 2.0]), Tensor)
assert_type(torch.cat((torch.zeros((2, 3)), ones), dim=0), Tensor)
assert_type(torch.nn.functional.mse_loss(torch.stack([ones, ones]), torch.randn(2, 2, 3)), Tensor)
assert_type(torch.where(ones > 0, ones, torch.full((2, 3), 1.5)), Tensor)
