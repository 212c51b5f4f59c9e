"""refnn: a verification-first reference implementation of neural networks in numpy.

Every function cites the equation it implements (``Spec: ID`` in its docstring; the equations
are in the repository's ``specs/``), and ``make check`` verifies every derivative by finite
differences with :mod:`refnn.gradcheck`, which depends on nothing else in refnn.
"""

# GRADCHECK-IMPORT
from refnn.activations import ReLU, Sigmoid
from refnn.dense import Dense
from refnn.layer import Layer, Parameter
from refnn.losses import BinaryCrossEntropy, BinaryCrossEntropyWithLogits, Loss
from refnn.model import Sequential, mlp
from refnn.optim import GradientDescent, Momentum, Optimizer
from refnn.train import History, TrainingDivergedError, fit, predict

__all__ = [
    "BinaryCrossEntropy",
    "BinaryCrossEntropyWithLogits",
    "Dense",
    "GradientDescent",
    "History",
    "Layer",
    "Loss",
    "Momentum",
    "Optimizer",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "TrainingDivergedError",
    "fit",
    "mlp",
    "predict",
]
__version__ = "0.1.0"
