"""Neural-network building blocks with PyTorch's names: modules, losses, init, functional."""

from engine.nn import functional, init
from engine.nn.activation import (
    ELU,
    GELU,
    LeakyReLU,
    LogSigmoid,
    LogSoftmax,
    ReLU,
    Sigmoid,
    SiLU,
    Softmax,
    Softsign,
    Tanh,
)
from engine.nn.container import Sequential
from engine.nn.linear import Identity, Linear
from engine.nn.loss import CrossEntropyLoss, MSELoss, NLLLoss
from engine.nn.module import Module
from engine.nn.parameter import Parameter

__all__ = [
    "CrossEntropyLoss",
    "ELU",
    "GELU",
    "LeakyReLU",
    "LogSigmoid",
    "SiLU",
    "Softsign",
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
