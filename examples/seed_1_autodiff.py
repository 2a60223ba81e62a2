"""Seed section 1: autograd finds dy/dx of y = x^2 + 2x + 1 at x = 3 with no manual calculus."""

import engine as torch

# Create a number we want to learn from
x = torch.tensor(3.0, requires_grad=True)

# Do some math
y = x * x + 2 * x + 1  # y = x^2 + 2x + 1

# Ask: "How does y change when x changes?"
y.backward()

print("y =", y)
print("dy/dx =", x.grad)  # the seed's answer: 8.0, i.e. 2x + 2 at x = 3
print("by hand, 2x + 2 =", 2 * 3.0 + 2)
