"""Seed section 6: backward() adds into .grad, so gradients must be zeroed between steps."""

import engine as torch

print("The problem:")
x = torch.tensor(3.0, requires_grad=True)

# First calculation
y1 = x * 2
y1.backward()
print("after y1 = 2x:", x.grad)  # 2.0

# Second calculation (OOPS!)
y2 = x * 3
y2.backward()
print("after y2 = 3x:", x.grad)  # 5.0 (2 + 3, accumulated!)

print("The solution:")
x = torch.tensor(3.0, requires_grad=True)

# First calculation
y1 = x * 2
y1.backward()
print("after y1 = 2x:", x.grad)  # 2.0

# CLEAN THE WHITEBOARD
x.grad.zero_()

# Second calculation (correct!)
y2 = x * 3
y2.backward()
print("after zero_() and y2 = 3x:", x.grad)  # 3.0

print("In neural network training: fit y = 2x + 1")
inputs = torch.tensor([[0.0], [1.0], [2.0], [3.0]])
targets = 2 * inputs + 1
model = torch.nn.Linear(1, 1)
with torch.no_grad():
    # Start from zero so every run, and PyTorch, prints the same numbers.
    model.weight.zero_()
    model.bias.zero_()
criterion = torch.nn.MSELoss()
optimizer = torch.optim.SGD(model.parameters(), lr=0.1)

for step in range(1, 51):
    # Standard training loop pattern
    optimizer.zero_grad()  # Erase old gradients
    loss = criterion(model(inputs), targets)
    loss.backward()  # Calculate new gradients
    optimizer.step()  # Update weights
    if step in (1, 2, 3, 10, 50):
        print(f"step {step:2d}: loss = {loss.item():.6f}")

print(f"learned weight = {model.weight.item():.4f}, bias = {model.bias.item():.4f}")
