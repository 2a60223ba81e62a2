"""Seed section 4: leaf tensors keep their gradients; non-leaf ones only after retain_grad()."""

import engine as torch

# Leaf tensor (you created it directly)
x = torch.tensor(5.0, requires_grad=True)
print("x.is_leaf =", x.is_leaf)  # True

# Non-leaf tensor (result of operation)
y = x * 2
print("y.is_leaf =", y.is_leaf)  # False

x = torch.tensor(3.0, requires_grad=True)
y = x * 2  # Non-leaf

y.retain_grad()  # "Keep my gradient!"
z = y * 3
z.backward()

print("x.grad =", x.grad)  # 6.0 (always kept)
print("y.grad =", y.grad)  # 3.0 (kept because we asked)

# Without retain_grad() the non-leaf gradient is thrown away after backward.
w = torch.tensor(3.0, requires_grad=True)
v = w * 2
(v * 3).backward()
print("without retain_grad(), v.retains_grad =", v.retains_grad)
print("w.grad =", w.grad)
