"""A gentle introduction to torch.autograd, from the 60-minute blitz.

Modeled on pytorch/tutorials beginner_source/blitz/autograd_tutorial.py (the parts without
torchvision): Q = 3a^3 - b^2, backward with an external gradient, requires_grad flags, and
freezing parameters of a model.
"""
import torch
from torch import nn, optim

a = torch.tensor([2., 3.], requires_grad=True)
b = torch.tensor([6., 4.], requires_grad=True)
Q = 3 * a**3 - b**2
external_grad = torch.tensor([1., 1.])
Q.backward(gradient=external_grad)
print(9 * a**2 == a.grad)
print(-2 * b == b.grad)
print(a.grad, b.grad)

x = torch.rand(5, 5)
y = torch.rand(5, 5)
z = torch.rand((5, 5), requires_grad=True)
a = x + y
print(f"Does `a` require gradients?: {a.requires_grad}")
b = x + z
print(f"Does `b` require gradients?: {b.requires_grad}")

model = nn.Sequential(nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 4))
for param in model.parameters():
    param.requires_grad = False
model[2] = nn.Linear(6, 10)
optimizer = optim.SGD(model.parameters(), lr=1e-2, momentum=0.9)
print([p.requires_grad for p in model.parameters()])
out = model(torch.randn(3, 8)).sum()
out.backward()
print(model[0].weight.grad, model[2].bias.grad)
optimizer.step()
print(model[2].bias)
