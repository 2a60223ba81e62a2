"""Seed section 3: only tensors created with requires_grad=True receive gradients."""

import engine as torch

# Tracked tensor (learnable)
weights = torch.tensor([1.0, 2.0], requires_grad=True)

# Untracked tensor (input data)
inputs = torch.tensor([3.0, 4.0])

# Only weights will receive gradients
output = (weights * inputs).sum()
output.backward()

print("output =", output)
print("weights.requires_grad =", weights.requires_grad)
print("inputs.requires_grad =", inputs.requires_grad)
print("weights.grad =", weights.grad)  # [3.0, 4.0]: the inputs
print("inputs.grad =", inputs.grad)  # None (not tracked!)
