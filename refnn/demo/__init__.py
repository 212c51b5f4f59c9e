"""Demos on real data that ships inside a package (nothing is downloaded at run time).

``python -m refnn.demo`` (or ``make demo``) trains three models on scikit-learn's bundled data
sets, printing cost, accuracy and time per epoch, and writes to ``demo-output/``:

* ``mlp``: the seeds' L-layer binary classifier on the breast-cancer data (:mod:`.mlp_run`);
* ``cnn``: Conv2D - ReLU - MaxPool2D - Flatten - Dense on the 8 x 8 digits (:mod:`.cnn_run`);
* ``lstm``: an LSTM reading the digits row by row (:mod:`.lstm_run`).

For each: a PNG of cost and accuracy per epoch (with matplotlib) and the trained model saved
with :func:`refnn.save` and reloaded with :func:`refnn.load` (predictions compared bit for bit).
Options: ``--quick``, ``--only mlp|cnn|lstm``, ``--out DIR``, ``--no-plots``. The data sets and
plots need the ``demo`` extra: ``pip install 'refnn[demo]'``.
"""

from refnn.demo.cli import main
from refnn.demo.training import EpochRecord, RunResult, Settings, accuracy, train_run
from refnn.sequence import LastStep

__all__ = ["EpochRecord", "LastStep", "RunResult", "Settings", "accuracy", "main", "train_run"]
