"""refnn: a verification-first reference implementation of neural networks in numpy.

Every function cites the equation it implements (``Spec: ID`` in its docstring; the equations
are in the repository's ``specs/``), and ``make check`` verifies every derivative by finite
differences with :mod:`refnn.gradcheck`, which depends on nothing else in refnn.
"""

from refnn import gradcheck
from refnn.activations import ReLU, Sigmoid, Softmax, Tanh
from refnn.attention import MultiHeadAttention, PositionalEncoding, ScaledDotProductAttention
from refnn.conv import Conv2D
from refnn.conv_transpose import ConvTranspose2D
from refnn.dense import Dense
from refnn.dropout import Dropout
from refnn.embedding import Embedding
from refnn.flatten import Flatten
from refnn.io import ModelFileError, load, save
from refnn.layer import Layer, Parameter
from refnn.losses import (
    BinaryCrossEntropy,
    BinaryCrossEntropyWithLogits,
    CrossEntropy,
    Loss,
    MeanSquaredError,
    MulticlassHinge,
    SoftmaxCrossEntropy,
)
from refnn.lstm import LSTM
from refnn.model import Sequential, mlp
from refnn.norm import BatchNorm, GroupNorm, LayerNorm
from refnn.optim import Adam, AdamW, GradientDescent, Momentum, Nesterov, Optimizer, RMSprop
from refnn.pool import AvgPool2D, MaxPool2D
from refnn.recurrent import GRU, RNN
from refnn.sequence import LastStep
from refnn.temporal import TemporalDense, TemporalSoftmaxCrossEntropy
from refnn.train import History, TrainingDivergedError, fit, predict

__all__ = [
    "GRU",
    "LSTM",
    "RNN",
    "Adam",
    "AdamW",
    "AvgPool2D",
    "BatchNorm",
    "BinaryCrossEntropy",
    "BinaryCrossEntropyWithLogits",
    "Conv2D",
    "ConvTranspose2D",
    "CrossEntropy",
    "Dense",
    "Dropout",
    "Embedding",
    "Flatten",
    "GradientDescent",
    "GroupNorm",
    "History",
    "LastStep",
    "Layer",
    "LayerNorm",
    "Loss",
    "MaxPool2D",
    "MeanSquaredError",
    "ModelFileError",
    "Momentum",
    "MultiHeadAttention",
    "MulticlassHinge",
    "Nesterov",
    "Optimizer",
    "Parameter",
    "PositionalEncoding",
    "RMSprop",
    "ReLU",
    "ScaledDotProductAttention",
    "Sequential",
    "Sigmoid",
    "Softmax",
    "SoftmaxCrossEntropy",
    "Tanh",
    "TemporalDense",
    "TemporalSoftmaxCrossEntropy",
    "TrainingDivergedError",
    "fit",
    "gradcheck",
    "load",
    "mlp",
    "predict",
    "save",
]
__version__ = "0.2.0"
