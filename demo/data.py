"""The demo's data: scikit-learn's bundled data sets, split and laid out examples-last.

Only ``load_breast_cancer`` and ``load_digits`` are used: both ship inside the scikit-learn
wheel, so nothing is downloaded at run time. Splits are stratified and drawn from an explicit
generator; any normalisation is fitted on the training split only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from refnn.types import FloatArray

IntArray = np.ndarray[Any, np.dtype[np.intp]]

INSTALL_HINT = "pip install 'refnn[demo]' (scikit-learn and matplotlib)"


class DemoDependencyError(ImportError):
    """An optional dependency of the demo (scikit-learn) is missing; says how to install it."""


@dataclass(frozen=True)
class Split:
    """A train/test split, examples on the last axis (NOTE-AXES).

    Attributes
    ----------
    name : str
        What the data is, for the progress lines.
    X_train, X_test : ndarray
        Inputs, e.g. (30, m), (1, 8, 8, m) or (8, 8, m).
    Y_train, Y_test : ndarray
        Labels: (1, m) in {0, 1} for a binary task, one-hot (k, m) for k classes.
    """

    name: str
    X_train: FloatArray
    Y_train: FloatArray
    X_test: FloatArray
    Y_test: FloatArray

    @property
    def m_train(self) -> int:
        m: int = self.X_train.shape[-1]
        return m

    @property
    def m_test(self) -> int:
        m: int = self.X_test.shape[-1]
        return m

    def limit(self, m_train: int | None, m_test: int | None = None) -> Split:
        """The first ``m_train`` training and ``m_test`` test examples (None: all)."""
        return Split(
            self.name,
            self.X_train[..., :m_train],
            self.Y_train[..., :m_train],
            self.X_test[..., :m_test],
            self.Y_test[..., :m_test],
        )


def stratified_split(
    labels: IntArray, test_fraction: float, rng: np.random.Generator
) -> tuple[IntArray, IntArray]:
    """Train and test indices with each class in the same proportion in both, shuffled.

    Every class gives round(test_fraction * its count) examples to the test set.
    """
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    train: list[IntArray] = []
    test: list[IntArray] = []
    for c in np.unique(labels):
        idx = rng.permutation(np.flatnonzero(labels == c))
        n_test = round(test_fraction * idx.size)
        test.append(idx[:n_test])
        train.append(idx[n_test:])
    train_idx: IntArray = rng.permutation(np.concatenate(train))
    test_idx: IntArray = rng.permutation(np.concatenate(test))
    return train_idx, test_idx


def standardize(X_train: FloatArray, X_test: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Scale each feature (row) to mean 0 and std 1 using the training examples only.

    A feature constant on the training split is only centred (its std is taken as 1).
    """
    mean = X_train.mean(axis=-1, keepdims=True)
    std = X_train.std(axis=-1, keepdims=True)
    std = np.where(std > 0, std, 1.0)
    out_train: FloatArray = (X_train - mean) / std
    out_test: FloatArray = (X_test - mean) / std
    return out_train, out_test


def one_hot(labels: IntArray, k: int) -> FloatArray:
    """One-hot columns (k, m) of integer labels in 0..k-1."""
    Y: FloatArray = np.zeros((k, labels.size))
    Y[labels, np.arange(labels.size)] = 1.0
    return Y


def _sklearn_datasets() -> Any:
    try:
        from sklearn import datasets
    except ImportError as err:
        raise DemoDependencyError(
            f"the demo's data sets come with scikit-learn, which is not installed: {INSTALL_HINT}"
        ) from err
    return datasets


def breast_cancer(*, seed: int = 0, test_fraction: float = 0.2) -> Split:
    """Wisconsin breast cancer (569 examples, 30 features), binary labels, standardized.

    X is (30, m); Y is (1, m) with 1 = benign, 0 = malignant (scikit-learn's coding).
    """
    X, y = _sklearn_datasets().load_breast_cancer(return_X_y=True)
    labels: IntArray = np.asarray(y, dtype=np.intp)
    train, test = stratified_split(labels, test_fraction, np.random.default_rng(seed))
    features = np.asarray(X, dtype=np.float64).T
    X_train, X_test = standardize(features[:, train], features[:, test])
    Y = labels[np.newaxis, :].astype(np.float64)
    return Split(
        "breast cancer (30 features)",
        np.ascontiguousarray(X_train),
        np.ascontiguousarray(Y[:, train]),
        np.ascontiguousarray(X_test),
        np.ascontiguousarray(Y[:, test]),
    )


def digits(
    layout: Literal["images", "rows"], *, seed: int = 0, test_fraction: float = 0.2
) -> Split:
    """The 8 x 8 handwritten digits (1797 examples, 10 classes), pixels scaled to [0, 1].

    Parameters
    ----------
    layout : {"images", "rows"}
        ``"images"``: X is (1, 8, 8, m), one channel (C x H x W x m). ``"rows"``: X is
        (8, 8, m), a sequence of T = 8 rows of 8 pixels each (n x T x m): step t is row t.
    seed, test_fraction
        The held-out split (stratified by class; the same for both layouts).

    Notes
    -----
    Pixels are divided by 16, their fixed maximum: nothing is fitted on the data.
    """
    bunch = _sklearn_datasets().load_digits()
    images = np.asarray(bunch.images, dtype=np.float64) / 16.0  # (m, rows, cols)
    labels: IntArray = np.asarray(bunch.target, dtype=np.intp)
    train, test = stratified_split(labels, test_fraction, np.random.default_rng(seed))
    if layout == "images":
        X = images.transpose(1, 2, 0)[np.newaxis]  # (1, row, col, m)
        name = "digits 8x8 images (1 x 8 x 8)"
    elif layout == "rows":
        X = images.transpose(2, 1, 0)  # (col = feature, row = step, m)
        name = "digits read row by row (8 steps of 8 pixels)"
    else:
        raise ValueError(f"layout must be 'images' or 'rows', got {layout!r}")
    Y = one_hot(labels, 10)
    return Split(
        name,
        np.ascontiguousarray(X[..., train]),
        np.ascontiguousarray(Y[:, train]),
        np.ascontiguousarray(X[..., test]),
        np.ascontiguousarray(Y[:, test]),
    )
