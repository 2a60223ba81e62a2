"""Seed section 5: the chain rule, gradients flowing backward from y = (x + 1)^2 to x."""

import engine as torch

x = torch.tensor(2.0, requires_grad=True)

# Forward pass: y = (x + 1)^2
h = x + 1  # h = 3
h.retain_grad()  # keep dy/dh too, to show each link of the chain
y = h * h  # y = 9

print("h =", h)
print("y =", y)

# Backward pass
y.backward()

# Gradient flows: dy/dh = 2h = 6, dh/dx = 1, dy/dx = 6 x 1 = 6
print("dy/dh =", h.grad)
print("dy/dx =", x.grad)  # 6.0
