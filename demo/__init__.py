"""An example application of refnn on real data (nothing is downloaded at run time).

Not part of the installed package: run it from a checkout.

``python -m demo`` (or ``make demo``) trains three models on scikit-learn's bundled data
sets, printing cost, accuracy and time per epoch, and writes to ``demo-output/``:

* ``mlp``: an L-layer MLP binary classifier on the breast-cancer data (:mod:`.mlp_run`);
* ``cnn``: Conv2D - ReLU - MaxPool2D - Flatten - Dense on the 8 x 8 digits (:mod:`.cnn_run`);
* ``lstm``: an LSTM reading the digits row by row (:mod:`.lstm_run`).

For each: a PNG of cost and accuracy per epoch (with matplotlib) and the trained model saved
with :func:`refnn.save` and reloaded with :func:`refnn.load` (predictions compared bit for bit).
Options: ``--quick``, ``--only mlp|cnn|lstm``, ``--out DIR``, ``--no-plots``. The data sets and
plots need the ``demo`` extra: ``pip install 'refnn[demo]'``.
"""

from demo.cli import main
from demo.training import EpochRecord, RunResult, Settings, accuracy, train_run

__all__ = ["EpochRecord", "RunResult", "Settings", "accuracy", "main", "train_run"]
