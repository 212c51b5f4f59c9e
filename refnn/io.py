"""Saving and loading models as .npz files with a JSON header (IO-*, ``specs/io.md``).

    save(model, "model.npz")        # atomic: the old file is replaced whole or not at all
    model = load("model.npz")       # a bad file raises ModelFileError (a ValueError)

A file names layer classes, never code: a layer is rebuilt only from the registry below or from
a class the caller passes in ``layers=``. Nothing is pickled, and every size a file declares is
checked against the bytes it holds before anything of that size is allocated.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import json
import math
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from typing import IO, Any

import numpy as np

from refnn._validate import check_rng
from refnn.layer import Layer
from refnn.model import Sequential

FORMAT_NAME, FORMAT_VERSION, HEADER_KEY = "refnn.model", 2, "__refnn__"
_READS = (1, 2)  # version 1 also listed each parameter's shape, dtype and SHA-256 (ignored)
_TMP = ".refnn-tmp"  # a temporary file is ".<name>.<pid>.<random>.refnn-tmp"
PathLike = str | os.PathLike[str]
Shapes = Callable[[dict[str, Any]], dict[str, tuple[Any, ...]]]
Meta = tuple[tuple[int, ...], str]  # shape and dtype, as '<f8'
Registry = dict[str, tuple[type[Layer[Any]], Shapes | None]]


def _wb(W: tuple[Any, ...], n: object) -> dict[str, tuple[Any, ...]]:
    return {"W": W, "b": (n, 1)}


#: refnn's layer classes by name -> the parameter shapes a config implies (checked before build).
_REFNN_LAYERS: dict[str, Shapes] = {
    "Dense": lambda c: _wb((c["n_out"], c["n_in"]), c["n_out"]),
    "Conv2D": lambda c: _wb(
        (c["out_channels"], c["in_channels"], *c["kernel_size"]), c["out_channels"]
    ),
    "LSTM": lambda c: _wb((4 * c["n_hidden"], c["n_in"] + c["n_hidden"]), 4 * c["n_hidden"]),
    **{
        name: lambda c: {}
        for name in "Sigmoid ReLU Tanh Softmax Dropout Flatten MaxPool2D AvgPool2D LastStep".split()
    },
}


class ModelFileError(ValueError):
    """A model file cannot be loaded: the message names the file and what is wrong with it."""


def _registry(extra: Iterable[type[Layer[Any]]]) -> Registry:
    """refnn's classes with their parameter shapes, plus the caller's (shapes unknown)."""
    import refnn  # late: refnn/__init__ imports this module

    found: Registry = {name: (getattr(refnn, name), f) for name, f in _REFNN_LAYERS.items()}
    for cls in extra:
        if not isinstance(cls, type) or not issubclass(cls, Layer) or inspect.isabstract(cls):
            raise TypeError(f"layers must hold concrete Layer subclasses, got {cls!r}")
        if (known := found.get(cls.__name__, (cls, None))[0]) is not cls:
            raise ValueError(
                f"layers: {cls.__qualname__} has the name of {known}; names must be unique"
            )
        found[cls.__name__] = (cls, None)
    return found


def _check_path(path: object) -> str:
    """``path`` as a str, if it is a str or os.PathLike naming a file."""
    name = os.fspath(path) if isinstance(path, str | os.PathLike) else path
    if not isinstance(name, str):
        raise TypeError(f"path must be a str or os.PathLike of str, got {type(name).__name__}")
    if not name or "\0" in name or name.endswith(("/", os.sep)):
        raise ValueError(f"path must name a file (not empty, no trailing separator), got {name!r}")
    return name


def save(model: Sequential, path: PathLike, *, layers: Iterable[type[Layer[Any]]] = ()) -> None:
    """Write ``model`` to ``path`` as a .npz file, atomically.

    Parameters
    ----------
    model : Sequential
        Of refnn's layers, or of classes passed in ``layers`` (pass them to ``load`` too).
    path : str or os.PathLike
        Used as given (".npz" is suggested, not appended). A symbolic link is followed: the
        file it points to is replaced and the link stays.
    layers : iterable of Layer subclasses

    Raises
    ------
    TypeError
        Not a Sequential, a layer class refnn does not know, a path that is not str/PathLike.
    ValueError
        An empty path or one ending in a separator, a config() that is not plain JSON, a
        parameter holding NaN or Inf (named). An OSError names ``path``.

    Notes
    -----
    Spec: IO-FORMAT, IO-FINITE, IO-ATOMIC
    """
    name = _check_path(path)
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a refnn Sequential, got {type(model).__name__}")
    registry = _registry(layers)
    records, arrays = [], {}
    for i, layer in enumerate(model.layers):
        kind = type(layer).__name__
        if registry.get(kind, (None,))[0] is not type(layer):
            raise TypeError(f"layer {i}: {type(layer)} is not a refnn layer; pass it in layers=")
        try:
            records.append({"type": kind, "config": json.loads(json.dumps(layer.config()))})
        except (TypeError, ValueError) as err:
            raise ValueError(f"layer {i} ({kind}): config() is not plain JSON ({err})") from err
        for key, value in layer.params.items():
            if not np.isfinite(value).all():
                raise ValueError(f"parameter '{i}.{key}' ({kind}) holds NaN or Inf; not saved")
            arrays[f"{i}.{key}"] = np.ascontiguousarray(value)
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "layers": records}
    arrays[HEADER_KEY] = np.array(json.dumps(header))
    _write_atomic(name, lambda handle: np.savez(handle, allow_pickle=False, **arrays))


def _write_atomic(name: str, write: Callable[[IO[bytes]], None]) -> None:
    """Write a temporary file in the target's directory, fsync it, ``os.replace`` it over.

    Notes
    -----
    Spec: IO-ATOMIC
    """
    target = os.path.realpath(name)  # through a symbolic link to the file it names
    directory = os.path.dirname(target)
    _remove_stale_temporaries(directory)
    mode = stat.S_IMODE(os.stat(target).st_mode) if os.path.isfile(target) else 0o644
    tmp = ""
    try:
        fd, tmp = tempfile.mkstemp(
            prefix=f".{os.path.basename(target)}.{os.getpid()}.", suffix=_TMP, dir=directory
        )
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException as err:
        if tmp:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if isinstance(err, OSError):  # name the user's path, not the temporary file
            message = f"cannot save to {name!r}: {err.strerror or err}"
            raise (type(err)(err.errno, message) if err.errno else type(err)(message)) from err
        raise
    with contextlib.suppress(OSError):  # make the rename durable where directories open
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _remove_stale_temporaries(directory: str) -> None:
    """Remove refnn's temporary files whose writer has died (killed mid-save); POSIX only."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory) if os.name == "posix" else ():
            if found := re.fullmatch(r"\..+\.(\d+)\.\w+\.refnn-tmp", entry.name):
                try:
                    os.kill(int(found[1]), 0)  # signal 0 only asks whether the process exists
                except ProcessLookupError:
                    os.unlink(entry.path)
                except (PermissionError, OverflowError):
                    pass


def load(
    path: PathLike,
    *,
    expect: Sequential | None = None,
    layers: Iterable[type[Layer[Any]]] = (),
    rng: np.random.Generator | None = None,
) -> Sequential:
    """Rebuild the model that ``save`` wrote to ``path``.

    Parameters
    ----------
    path : str or os.PathLike
    expect : Sequential, optional
        If given, the file must describe the same layer types and configs.
    layers : iterable of Layer subclasses
        The application classes passed to ``save``.
    rng : numpy.random.Generator, optional
        For the constructors that take ``rng=`` (the weights they draw are overwritten; Dropout
        draws its masks from it). Default ``np.random.default_rng(0)``.

    Raises
    ------
    ModelFileError
        The file is not one ``save`` could have written (IO-LOAD-CHECKS); OSError (no such file,
        no permission) stays OSError.

    Notes
    -----
    Spec: IO-LOAD-CHECKS, IO-FINITE, IO-ROUNDTRIP
    """
    name = _check_path(path)
    registry = _registry(layers)
    generator = np.random.default_rng(0) if rng is None else check_rng(rng)
    with open(name, "rb") as handle:
        try:
            if (head := handle.read(4)) != b"PK\x03\x04":
                raise ModelFileError(f"is not a refnn model (.npz archive): it begins {head!r}")
            with zipfile.ZipFile(handle) as archive:
                model = _read(archive, os.fstat(handle.fileno()).st_size, registry, generator)
        except ModelFileError as err:
            raise ModelFileError(f"{name}: {err}") from err
        except Exception as err:  # damaged bytes surface as any of a dozen error types
            raise ModelFileError(
                f"{name}: is not a readable model ({type(err).__name__}: {err})"
            ) from err
    if expect is not None and (found := _describe(model)) != (wanted := _describe(expect)):
        raise ModelFileError(f"{name}: holds another architecture: {found}; expected {wanted}")
    return model


def _describe(model: Sequential) -> str:
    return ", ".join(f"{type(la).__name__}({json.dumps(la.config())})" for la in model.layers)


def _read(zf: zipfile.ZipFile, size: int, registry: Registry, rng: Any) -> Sequential:
    """Read the members once their declared sizes are checked, then the header, then each layer.

    Notes
    -----
    Spec: IO-BOUNDED, IO-LOAD-CHECKS
    """
    infos = zf.infolist()
    if len({i.filename for i in infos}) < len(infos) or sum(i.file_size for i in infos) > size:
        raise ModelFileError("its members repeat or declare more bytes than the file holds")
    stored = {info.filename.removesuffix(".npy"): _npy(zf, info) for info in infos}
    if HEADER_KEY not in stored or stored[HEADER_KEY].shape or stored[HEADER_KEY].dtype.kind != "U":
        raise ModelFileError(f"has no {HEADER_KEY!r} header (a 0-d unicode array)")
    header = json.loads(str(stored.pop(HEADER_KEY)[()]))
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ModelFileError(f"is not a {FORMAT_NAME!r} file: its header is {header!s:.80}")
    if (version := header.get("version")) not in _READS or isinstance(version, bool):
        raise ModelFileError(f"has format version {version!r}; this refnn reads {_READS}")
    if not isinstance(records := header.get("layers"), list) or not records:
        raise ModelFileError(f"its header must list one layer or more, got {records!r:.80}")
    indices = [str(i) for i in range(len(records))]
    if unlisted := sorted(n for n in stored if n.split(".")[0] not in indices or "." not in n):
        raise ModelFileError(f"holds array(s) {unlisted} of no layer")
    built: list[Layer[Any]] = []
    for i, record in enumerate(records):
        kind, config = (
            (record.get("type"), record.get("config")) if isinstance(record, dict) else (None, None)
        )
        if kind not in registry or not isinstance(config, dict):
            raise ModelFileError(
                f"layer {i} must be one of {sorted(registry)} with a config, got {record!r:.80}"
            )
        cls, shapes = registry[kind]
        mine = {
            n.partition(".")[2]: (a.shape, a.dtype.str)
            for n, a in stored.items()
            if n.split(".")[0] == str(i)
        }
        try:
            if shapes is not None and (implied := shapes(config)) != {
                k: s for k, (s, _) in mine.items()
            }:
                raise ValueError(f"it implies parameters {implied}, the file holds {mine}")
            layer = cls(**config, **({"rng": rng} if _takes_rng(cls) else {}))
        except (TypeError, ValueError, KeyError) as err:
            raise ModelFileError(f"layer {i} ({kind}): config {config} is refused: {err}") from err
        if (expected := {k: (v.shape, v.dtype.str) for k, v in layer.params.items()}) != mine:
            raise ModelFileError(f"layer {i}: {layer} has parameters {expected}, the file {mine}")
        for key, target in layer.params.items():
            if not np.isfinite(value := stored[f"{i}.{key}"]).all():
                raise ModelFileError(f"parameter '{i}.{key}' ({kind}) holds NaN or Inf")
            np.copyto(target, value, casting="no")
        built.append(layer)
    return Sequential(built)


@functools.cache
def _takes_rng(cls: type[Layer[Any]]) -> bool:
    return "rng" in inspect.signature(cls).parameters


def _npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray[Any, Any]:
    """A .npy member, read only once its header's shape and dtype match the member's size."""
    if not info.filename.endswith(".npy"):
        raise ModelFileError(f"member {info.filename!r} is not a .npy array")
    with zf.open(info) as member:
        version = np.lib.format.read_magic(member)
        read = getattr(np.lib.format, f"read_array_header_{version[0]}_0")  # 1.0 or 2.0 only
        shape, fortran, dtype = read(member)
        size = math.prod(shape) * dtype.itemsize
        if dtype.hasobject or member.tell() + size != info.file_size:
            raise ModelFileError(
                f"member {info.filename!r} is not a plain .npy array of its declared size"
            )
        data = member.read(size)  # the zip CRC-32 is checked on reading the last byte
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


__all__ = ["FORMAT_VERSION", "ModelFileError", "load", "save"]
