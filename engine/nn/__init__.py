"""Neural-network building blocks with PyTorch's names: modules, losses, init, functional."""

from engine.nn import functional, init
from engine.nn.activation import LogSoftmax, ReLU, Sigmoid, Softmax, Tanh
from engine.nn.container import Sequential
from engine.nn.linear import Identity, Linear
from engine.nn.loss import CrossEntropyLoss, MSELoss, NLLLoss
from engine.nn.module import Module
from engine.nn.parameter import Parameter

__all__ = [
    "CrossEntropyLoss",
    "Identity",
    "Linear",
    "LogSoftmax",
    "MSELoss",
    "Module",
    "NLLLoss",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "Tanh",
    "functional",
    "init",
]
