"""Models as .npz files with a JSON header (``specs/io.md``): no pickle, no code named, and no
size a file declares allocated before it is checked against the bytes the file holds.
"""

import contextlib
import inspect
import json
import math
import os
import re
import tempfile
import zipfile
from collections.abc import Iterable
from typing import Any

import numpy as np

from refnn._validate import check_rng
from refnn.layer import Layer
from refnn.model import Sequential
from refnn.registry import components

FORMAT_NAME, FORMAT_VERSION, HEADER_KEY = "refnn.model", 2, "__refnn__"
PathLike = str | os.PathLike[str]
Classes = Iterable[type[Layer[Any]]]
Arrays = dict[str, Any]
Rng = np.random.Generator | None
Registry = dict[str, type[Layer[Any]]]


class ModelFileError(ValueError):
    """A model file cannot be loaded: the message names the file and what is wrong with it."""


def _registry(extra: Classes) -> Registry:
    """The registered layer classes (NOTE-REGISTRY), plus the caller's unregistered ones."""
    found: Registry = dict(components("layer"))
    for cls in extra:
        if not isinstance(cls, type) or not issubclass(cls, Layer) or inspect.isabstract(cls):
            raise TypeError(f"layers must hold concrete Layer subclasses, got {cls!r}")
        if (known := found.get(cls.__name__, cls)) is not cls:
            raise ValueError(f"layers: {cls} has the name of {known}; names must be unique")
        found[cls.__name__] = cls
    return found


def implied_shapes(
    cls: type[Layer[Any]], config: dict[str, Any]
) -> dict[str, tuple[Any, ...]] | None:
    """The parameter and buffer shapes a config implies: declared by every registered class
    (NOTE-REGISTRY); None for an unregistered class passed in ``layers=``, which is checked
    only once built."""
    if components("layer").get(cls.__name__) is not cls:
        return None
    return {**cls.param_shapes(config), **cls.buffer_shapes(config)}


def _stored(layer: Layer[Any]) -> dict[str, Any]:
    """What a file holds of a layer: its parameters and its buffers, by key."""
    return {**layer.params, **layer.buffers}


def _check_path(path: object) -> str:
    """``path`` as a str, if it is a str or os.PathLike naming a file.

    Spec: IO-PATH
    """
    name = os.fspath(path) if isinstance(path, str | os.PathLike) else path
    if not isinstance(name, str):
        raise TypeError(f"path must be a str or os.PathLike of str, got {type(name).__name__}")
    if not name or "\0" in name or name.endswith(("/", os.sep)):
        raise ValueError(f"path must name a file (not empty, no trailing separator), got {name!r}")
    return name


def save(model: Sequential, path: PathLike, *, layers: Classes = ()) -> None:
    """Write ``model`` to ``path`` as a .npz file, atomically (ValueError names a NaN parameter).

    Parameters
    ----------
    model : Sequential
        Of refnn's layers; a TypeError names any other class unless it is in ``layers``.
    path : str or os.PathLike
        Used as given (".npz" suggested, not appended); a symbolic link is followed.
    layers : iterable of Layer subclasses
        Application classes (pass them to ``load`` too).

    Spec: IO-FORMAT, IO-FINITE, IO-ATOMIC

    Examples
    --------
    >>> import pathlib, tempfile
    >>> import numpy as np
    >>> import refnn
    >>> model = refnn.mlp([2, 3, 1], rng=np.random.default_rng(0))
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "model.npz"
    >>> refnn.save(model, path)
    >>> X = np.ones((2, 4))
    >>> bool(np.array_equal(refnn.load(path).forward(X), model.forward(X)))
    True
    """
    name = _check_path(path)
    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a refnn Sequential, got {type(model).__name__}")
    registry = _registry(layers)
    records, arrays = [], {}
    for i, layer in enumerate(model.layers):
        kind = type(layer).__name__
        if registry.get(kind) is not type(layer):
            raise TypeError(f"layer {i}: {type(layer)} is not a refnn layer; pass it in layers=")
        try:
            records.append({"type": kind, "config": json.loads(json.dumps(layer.config()))})
        except (TypeError, ValueError) as err:
            raise ValueError(f"layer {i} ({kind}): config() is not plain JSON ({err})") from err
        if set(layer.params) & set(layer.buffers):
            raise ValueError(f"layer {i} ({kind}): a parameter and a buffer share a name")
        for key, value in _stored(layer).items():
            if not np.isfinite(value).all():
                raise ValueError(f"parameter '{i}.{key}' ({kind}) holds NaN or Inf; not saved")
            arrays[f"{i}.{key}"] = np.ascontiguousarray(value)
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "layers": records}
    arrays[HEADER_KEY] = np.array(json.dumps(header))
    _write_atomic(name, arrays)


def _write_atomic(name: str, arrays: dict[str, Any]) -> None:
    """Write ".<name>.<pid>.<random>.refnn-tmp" by the target, fsync it, ``os.replace`` it over.

    Temporary files of this naming whose writer has died are removed first (POSIX).
    Spec: IO-ATOMIC
    """
    target = os.path.realpath(name)  # through a symbolic link to the file it names
    directory = os.path.dirname(target)
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory) if os.name == "posix" else ():
            if found := re.fullmatch(r"\..+\.(\d{1,9})\.\w+\.refnn-tmp", entry.name):
                try:
                    os.kill(int(found[1]), 0)  # signal 0 only asks whether the process exists
                except ProcessLookupError:
                    os.unlink(entry.path)
    tmp = ""
    try:
        prefix = f".{os.path.basename(target)}.{os.getpid()}."
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".refnn-tmp", dir=directory)
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)  # float arrays and a str header only: nothing to pickle
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, os.stat(target).st_mode & 0o7777 if os.path.isfile(target) else 0o644)
        os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
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


def load(
    path: PathLike, *, expect: Sequential | None = None, layers: Classes = (), rng: Rng = None
) -> Sequential:
    """Rebuild the model ``save`` wrote to ``path`` (IO-LOAD-CHECKS: ModelFileError if bad).

    Parameters
    ----------
    path : str or os.PathLike
    expect : Sequential, optional
        If given, the file must describe the same layer types and configs.
    layers : iterable of Layer subclasses
        The application classes passed to ``save``.
    rng : numpy.random.Generator, optional
        Given to constructors taking ``rng=`` (Dropout's masks); default ``default_rng(0)``.

    Spec: IO-LOAD-CHECKS, IO-FINITE, IO-ROUNDTRIP
    """
    name = _check_path(path)
    registry, rng = _registry(layers), np.random.default_rng(0) if rng is None else check_rng(rng)
    if not isinstance(expect, Sequential | None):
        raise TypeError(f"expect must be a refnn Sequential or None, got {type(expect).__name__}")
    with open(name, "rb") as handle:
        try:
            if (head := handle.read(4)) != b"PK\x03\x04":
                raise ModelFileError(f"is not a refnn model (.npz archive): it begins {head!r}")
            stored, records = _contents(zipfile.ZipFile(handle), os.fstat(handle.fileno()).st_size)
            model = Sequential([_build(i, r, stored, registry, rng) for i, r in records])
        except Exception as err:  # damaged bytes surface as any of a dozen error types
            why = err if isinstance(err, ModelFileError) else f"is not a readable model ({err!r})"
            raise ModelFileError(f"{name}: {why}") from err
    if expect is not None and repr(model) != repr(expect):  # types and configs (Layer.__repr__)
        raise ModelFileError(f"{name}: holds another architecture: {model!r}; expected {expect!r}")
    return model


def _contents(zf: zipfile.ZipFile, size: int) -> tuple[Arrays, list[tuple[int, Arrays]]]:
    """The arrays, read once their declared sizes are checked, and the header's layer records.

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
    if (version := header.get("version")) not in (1, 2) or isinstance(version, bool):
        raise ModelFileError(f"has format version {version!r}; this refnn reads 1 and 2")
    records = header.get("layers")
    if not (isinstance(records, list) and records and all(isinstance(r, dict) for r in records)):
        raise ModelFileError(f"its header must list layers (objects), got {records!r:.80}")
    indices = [str(i) for i in range(len(records))]
    if unlisted := sorted(n for n in stored if "." not in n or n.split(".")[0] not in indices):
        raise ModelFileError(f"holds array(s) {unlisted} of no layer")
    return stored, list(enumerate(records))


def _build(i: int, record: Arrays, stored: Arrays, registry: Registry, rng: Any) -> Layer[Any]:
    """Build layer ``i`` once its config implies exactly the stored arrays, then fill it."""
    kind, config = record.get("type"), record.get("config")
    if kind not in registry or not isinstance(config, dict):
        raise ModelFileError(f"layer {i} must be one of {sorted(registry)}, got {record!r:.80}")
    cls = registry[kind]
    mine = {n.split(".", 1)[1]: a for n, a in stored.items() if n.split(".")[0] == str(i)}
    try:
        implied = implied_shapes(cls, config)
        if implied is not None and implied != {k: a.shape for k, a in mine.items()}:
            raise ValueError(f"it implies parameters {implied}, the file holds {_meta(mine)}")
        extra = {"rng": rng} if "rng" in inspect.signature(cls).parameters else {}
        layer = cls(**config, **extra)
    except (TypeError, ValueError, KeyError) as err:
        raise ModelFileError(f"layer {i} ({kind}): config {config} is refused: {err}") from err
    if (found := _meta(mine)) != (wanted := _meta(_stored(layer))):
        raise ModelFileError(f"layer {i}: {layer} has parameters {wanted}, the file {found}")
    for key, target in _stored(layer).items():
        if not np.isfinite(mine[key]).all():
            raise ModelFileError(f"parameter '{i}.{key}' ({kind}) holds NaN or Inf")
        np.copyto(target, mine[key], casting="no")
    return layer


def _meta(arrays: Arrays) -> dict[str, str]:
    return {k: f"{a.dtype.str}{list(a.shape)}" for k, a in arrays.items()}


def _npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray[Any, Any]:
    """A .npy member, read only once its header's shape and dtype match the member's size."""
    if not info.filename.endswith(".npy"):
        raise ModelFileError(f"member {info.filename!r} is not a .npy array")
    with zf.open(info) as member:
        major = np.lib.format.read_magic(member)[0]  # versions 1.0 and 2.0 only:
        shape, fortran, dtype = getattr(np.lib.format, f"read_array_header_{major}_0")(member)
        size = math.prod(shape) * dtype.itemsize
        if dtype.hasobject or member.tell() + size != info.file_size:
            raise ModelFileError(f"member {info.filename!r} is not a plain .npy array of its size")
        data = member.read(size)  # the zip CRC-32 is checked on reading the last byte
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


__all__ = ["FORMAT_VERSION", "ModelFileError", "load", "save"]
