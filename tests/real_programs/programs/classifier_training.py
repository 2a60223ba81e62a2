"""A small classifier trained the way course notebooks do it: mini-batches, train and eval
modes, Dropout and BatchNorm1d, CrossEntropyLoss, Adam with weight decay, StepLR, accuracy,
gradient clipping, and a checkpoint saved and loaded with torch.save / torch.load.

Modeled on the training loop of pytorch/tutorials beginner_source/basics/optimization_tutorial.py
and beginner_source/basics/saveloadrun_tutorial.py, on synthetic data (no datasets download).
"""
import io

import torch
from torch import nn

torch.manual_seed(42)
n, features, classes = 256, 6, 3
centres = torch.randn(classes, features) * 2
labels = torch.randint(0, classes, (n,))
inputs = centres[labels] + torch.randn(n, features)


class Classifier(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(features, 32), nn.BatchNorm1d(32), nn.ReLU(), nn.Dropout(0.2),
            nn.Linear(32, classes),
        )

    def forward(self, x):
        return self.net(x)


model = Classifier()
loss_fn = nn.CrossEntropyLoss()
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, weight_decay=1e-4)
scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=3, gamma=0.5)


def train_loop(batch_size=32):
    model.train()
    perm = torch.randperm(n)
    for start in range(0, n, batch_size):
        idx = perm[start:start + batch_size]
        pred = model(inputs[idx])
        loss = loss_fn(pred, labels[idx])
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
        optimizer.step()
        optimizer.zero_grad()
    return loss.item()


def test_loop():
    model.eval()
    with torch.no_grad():
        pred = model(inputs)
        test_loss = loss_fn(pred, labels).item()
        correct = (pred.argmax(1) == labels).type(torch.float).sum().item()
    return test_loss, correct / n


for epoch in range(6):
    last = train_loop()
    test_loss, accuracy = test_loop()
    scheduler.step()
    print(f"Epoch {epoch + 1}: train loss {last:>7f}, test loss {test_loss:>8f}, "
          f"accuracy {100 * accuracy:>0.1f}%, lr {scheduler.get_last_lr()[0]:.5f}")

buffer = io.BytesIO()
torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, buffer)
buffer.seek(0)
checkpoint = torch.load(buffer)
restored = Classifier()
restored.load_state_dict(checkpoint["model"])
restored.eval()
model.eval()
with torch.no_grad():
    print(torch.equal(restored(inputs), model(inputs)))
print(sorted(checkpoint["model"].keys()))
print(checkpoint["optimizer"]["param_groups"][0]["lr"])
