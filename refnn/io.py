"""Models as .npz files with a JSON header (``specs/io.md``): no pickle, no code named, and no
size a file declares allocated before it is checked against the bytes the file holds.
"""

import contextlib
import errno
import functools
import inspect
import json
import math
import os
import re
import stat
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterable
from typing import Any, BinaryIO

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

#: What load accepts at most (IO-LIMITS): layers in the header, members in the archive.
MAX_LAYERS = 10_000
MAX_MEMBERS = 1 + 4 * MAX_LAYERS
#: The JSON objects a header holds at most: itself, and 4 per layer on average (IO-LIMITS).
MAX_HEADER_OBJECTS = 1 + 4 * MAX_LAYERS
#: The most characters of one value from a file, and of a whole message, shown (IO-MESSAGES).
VALUE_LIMIT, MESSAGE_LIMIT = 200, 1000
#: The keys a header and a layer record hold, by format version (IO-HEADER).
HEADER_KEYS = {1: ("format", "version", "refnn", "layers"), 2: ("format", "version", "layers")}
RECORD_KEYS = {1: ("type", "config", "params"), 2: ("type", "config")}
#: "<layer>.<key>.npy", the layer index in plain decimal (IO-LIMITS).
_MEMBER = re.compile(r"(0|[1-9][0-9]{0,8})\.(.+)\.npy", re.DOTALL)
#: ".<name>.<pid>.<random>.refnn-partial": a temporary file of save's (IO-CLEANUP).
TMP_SUFFIX = ".refnn-partial"
_TMP = re.compile(r"\..+\.[0-9]+\.\w+" + re.escape(TMP_SUFFIX), re.DOTALL)
#: (st_dev, st_ino) of the temporary files this process is writing now (IO-CLEANUP).
_WRITING: set[tuple[int, int]] = set()
#: A temporary file unlocked and unwritten for this many seconds is abandoned (IO-CLEANUP).
ABANDONED_AFTER = 3600.0


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


def _construct(cls: type[Layer[Any]], config: dict[str, Any], rng: Any) -> Layer[Any]:
    """``cls(**config)``, with ``rng=`` if the constructor takes one (Dropout's masks)."""
    return cls(**config, **({"rng": rng} if _takes_rng(cls) else {}))


@functools.cache
def _takes_rng(cls: type[Layer[Any]]) -> bool:
    """Whether the constructor of ``cls`` takes ``rng=`` (once per class: it is slow to ask)."""
    return "rng" in inspect.signature(cls).parameters


def _cut(text: str, limit: int = VALUE_LIMIT) -> str:
    """``text``, or its first ``limit`` characters and how many it has.

    Spec: IO-MESSAGES
    """
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text)} characters)"


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
    """Write ``model`` to ``path`` as a .npz file, atomically, if ``load`` can read it back.

    Parameters
    ----------
    model : Sequential
        Of refnn's layers; a TypeError names any other class unless it is in ``layers``.
    path : str or os.PathLike
        Used as given (".npz" suggested, not appended); a symbolic link is followed.
    layers : iterable of Layer subclasses
        Application classes (pass them to ``load`` too).

    Raises
    ------
    ValueError
        Before anything is written, naming the layer and what ``load`` would require of it: a
        parameter of another shape, dtype or name than its config implies, NaN or Inf, a config
        its constructor refuses, more than ``MAX_LAYERS`` layers or ``MAX_MEMBERS`` arrays.

    Spec: IO-FORMAT, IO-FINITE, IO-ATOMIC, IO-SAVE-CHECKS

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
    if len(model.layers) > MAX_LAYERS:
        raise ValueError(f"model has {len(model.layers)} layers; load reads at most {MAX_LAYERS}")
    records, arrays = [], {}
    for i, layer in enumerate(model.layers):
        kind = type(layer).__name__
        if registry.get(kind) is not type(layer):
            raise TypeError(f"layer {i}: {type(layer)} is not a refnn layer; pass it in layers=")
        try:
            config = _json(json.dumps(layer.config()))
        except (TypeError, ValueError) as err:
            raise ValueError(f"layer {i} ({kind}): config() is not plain JSON ({err})") from err
        if set(layer.params) & set(layer.buffers):
            raise ValueError(f"layer {i} ({kind}): a parameter and a buffer share a name")
        _check_saveable(i, type(layer), config, _stored(layer))
        records.append({"type": kind, "config": config})
        arrays.update({f"{i}.{k}": np.ascontiguousarray(v) for k, v in _stored(layer).items()})
    if len(arrays) >= MAX_MEMBERS:
        raise ValueError(f"model has {len(arrays)} arrays; load reads at most {MAX_MEMBERS - 1}")
    header = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "layers": records}
    try:
        _records(text := json.dumps(header))  # read back as load will read it
    except ModelFileError as err:
        raise ValueError(f"load would refuse the model's header: {err}; nothing saved") from err
    arrays[HEADER_KEY] = np.array(text)
    _write_atomic(name, arrays)


def _check_saveable(i: int, cls: type[Layer[Any]], config: Arrays, params: Arrays) -> None:
    """Refuse (ValueError) a layer ``load`` would refuse: its parameters and buffers must be
    finite and have the names, shapes and dtype its config implies (a class of the caller's:
    those its constructor builds from the config).

    Spec: IO-SAVE-CHECKS, IO-FINITE
    """
    kind = cls.__name__
    for key, value in params.items():
        if not isinstance(key, str) or not key or not isinstance(value, np.ndarray):
            raise TypeError(
                f"layer {i} ({kind}): parameters must map non-empty str keys to numpy arrays, "
                f"got {key!r}: {type(value).__name__}"
            )
    try:
        shapes = implied_shapes(cls, config)
        if shapes is None:  # a class of the caller's, built as load will build it
            wanted = _meta(_stored(_construct(cls, config, np.random.default_rng(0))))
        else:  # a registered class: each array in the layer's dtype
            dtype = np.dtype(config["dtype"]).str
            wanted = {key: f"{dtype}{list(shape)}" for key, shape in shapes.items()}
    except (TypeError, ValueError, KeyError) as err:
        raise ValueError(
            f"layer {i} ({kind}): load could not rebuild it: its constructor refuses its config "
            f"{_cut(repr(config))} ({_cut(str(err))}); nothing was saved"
        ) from err
    if (held := _meta(params)) != wanted:
        raise ValueError(
            f"layer {i} ({kind}): its config implies parameters {_cut(str(wanted))}, it holds "
            f"{_cut(str(held))}; load would refuse the file, so nothing was saved"
        )
    for key, value in params.items():
        if not np.isfinite(value).all():
            raise ValueError(f"parameter '{i}.{key}' ({kind}) holds NaN or Inf; not saved")


def _write_atomic(name: str, arrays: dict[str, Any]) -> None:
    """Write ".<name>.<pid>.<random>.refnn-partial" by the target, locked while written, fsync
    it, ``os.replace`` it over the target, then release it.

    Spec: IO-ATOMIC, IO-CLEANUP
    """
    target = os.path.realpath(name)  # through a symbolic link to the file it names
    directory = os.path.dirname(target)
    _remove_abandoned(directory)
    tmp, live = "", (0, 0)
    try:
        fd, tmp = _new_temporary(target, directory)
        with os.fdopen(fd, "wb") as handle:
            live = os.fstat(fd).st_dev, os.fstat(fd).st_ino
            _WRITING.add(live)
            np.savez(handle, **arrays)  # float arrays and a str header only: nothing to pickle
            handle.flush()
            os.fsync(handle.fileno())
            os.chmod(tmp, os.stat(target).st_mode & 0o7777 if os.path.isfile(target) else 0o644)
            if os.name == "posix":  # renamed while still open and locked
                os.replace(tmp, target)
        if os.name != "posix":  # (Windows renames only closed files)
            os.replace(tmp, target)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(err, OSError):  # name the user's path, not the temporary file
            message = f"cannot save to {name!r}: {err.strerror or err}"
            raise (type(err)(err.errno, message) if err.errno else type(err)(message)) from err
        raise
    finally:
        _WRITING.discard(live)
    with contextlib.suppress(OSError):  # make the rename durable where directories open
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def _lock(fd: int) -> bool | None:
    """Take an exclusive lock on ``fd`` without waiting: True if taken, False if another open
    file holds it, None where there are no locks (Windows, some network file systems)."""
    if sys.platform == "win32":
        return None
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError:
        return None
    return True


def _same_file(fd: int, path: str) -> bool:
    """Whether ``path`` (not followed if a link) still names the file open as ``fd``."""
    try:
        there, here = os.lstat(path), os.fstat(fd)
    except OSError:
        return False
    return (there.st_dev, there.st_ino) == (here.st_dev, here.st_ino)


def _new_temporary(target: str, directory: str) -> tuple[int, str]:
    """A new temporary file beside ``target``, created and locked (the lock, held until the
    file is renamed or the process ends, tells other writers' clean-up it is live).

    Spec: IO-CLEANUP
    """
    for _ in range(100):
        prefix = f".{os.path.basename(target)}.{os.getpid()}."
        fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=TMP_SUFFIX, dir=directory)
        if _lock(fd) is not False and _same_file(fd, tmp):
            return fd, tmp
        with contextlib.suppress(OSError):  # another process has it open: leave it, start anew
            os.unlink(tmp)
        os.close(fd)
    raise FileExistsError(errno.EEXIST, "no temporary file could be created and locked")


def _remove_abandoned(directory: str) -> None:
    """Remove the temporary files save left in ``directory`` when its process ended before the
    rename (``kill -9``): those no process holds locked and none has written to for
    ``ABANDONED_AFTER`` seconds. A writer in another PID namespace or on another host holds its
    lock like any other; one whose lock cannot be seen here (a file system that keeps locks
    local) is still writing its file; where locks are not supported nothing is removed.

    Spec: IO-CLEANUP
    """
    if sys.platform == "win32":
        return
    with contextlib.suppress(OSError):
        for entry in os.scandir(directory):
            if not _TMP.fullmatch(entry.name):
                continue
            with contextlib.suppress(OSError):
                mine = entry.stat(follow_symlinks=False)
                if (mine.st_dev, mine.st_ino) in _WRITING:  # another thread of this process
                    continue
                fd = os.open(entry.path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW)
                try:
                    found = os.fstat(fd)
                    if (
                        stat.S_ISREG(found.st_mode)
                        and time.time() - found.st_mtime > ABANDONED_AFTER
                        and _lock(fd)
                        and _same_file(fd, entry.path)
                    ):
                        os.unlink(entry.path)  # nobody holds its lock nor writes to it
                finally:
                    os.close(fd)  # and with it the lock


def load(
    path: PathLike, *, expect: Sequential | None = None, layers: Classes = (), rng: Rng = None
) -> Sequential:
    """Rebuild the model ``save`` wrote to ``path`` (IO-LOAD-CHECKS: ModelFileError if bad).

    Parameters
    ----------
    path : str or os.PathLike
        A regular file (after following links); anything else is refused without reading.
    expect : Sequential, optional
        If given, the file must describe the same layer types and configs.
    layers : iterable of Layer subclasses
        The application classes passed to ``save``.
    rng : numpy.random.Generator, optional
        Given to constructors taking ``rng=`` (Dropout's masks); default ``default_rng(0)``.

    Spec: IO-LOAD-CHECKS, IO-FINITE, IO-ROUNDTRIP, IO-MESSAGES
    """
    name = _check_path(path)
    registry, rng = _registry(layers), np.random.default_rng(0) if rng is None else check_rng(rng)
    if not isinstance(expect, Sequential | None):
        raise TypeError(f"expect must be a refnn Sequential or None, got {type(expect).__name__}")
    with _open_regular(name) as handle:
        try:
            if (head := handle.read(4)) != b"PK\x03\x04":
                raise ModelFileError(f"is not a refnn model (.npz archive): it begins {head!r}")
            layers_in = _contents(handle, os.fstat(handle.fileno()).st_size)
            model = Sequential(
                [_build(i, r, a, registry, rng) for i, (r, a) in enumerate(layers_in)]
            )
        except Exception as err:  # damaged bytes surface as any of a dozen error types
            why = err if isinstance(err, ModelFileError) else f"is not a readable model ({err!r})"
            raise ModelFileError(f"{name}: {_cut(str(why), MESSAGE_LIMIT)}") from err
    if expect is not None and (other := _difference(model, expect)):
        raise ModelFileError(f"{name}: holds another architecture: {other}")
    return model


_KINDS = {
    stat.S_IFIFO: "a FIFO (named pipe)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def _open_regular(name: str) -> BinaryIO:
    """``name`` opened for reading if it is a regular file once links are followed; a FIFO is
    opened without waiting for a writer, then refused like a device or a socket.

    Spec: IO-REGULAR
    """
    kind = _KINDS.get(stat.S_IFMT(os.stat(name).st_mode))  # a socket cannot even be opened
    fd = -1 if kind else os.open(name, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    try:
        mode = os.fstat(fd).st_mode if fd >= 0 else 0
        if fd >= 0 and stat.S_ISDIR(mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
        if kind or not stat.S_ISREG(mode):
            what = kind or _KINDS.get(stat.S_IFMT(mode), f"of file type {stat.S_IFMT(mode):o}")
            raise ModelFileError(f"{name}: is {what}, not a regular file; a model is a file")
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(fd, True)
        return os.fdopen(fd, "rb")
    except BaseException:
        if fd >= 0:
            os.close(fd)
        raise


def _declared_members(handle: BinaryIO, size: int) -> int | None:
    """The member count in the zip's end-of-directory record (65535 stands for 65535 or more),
    read before the directory; None if there is no such record (zipfile then refuses).

    Spec: IO-LIMITS
    """
    handle.seek(size - (tail := min(size, 22 + 0xFFFF)))
    data = handle.read(tail)
    if (at := data.rfind(b"PK\x05\x06")) < 0 or len(data) - at < 22:
        return None
    return int.from_bytes(data[at + 10 : at + 12], "little")


def _contents(handle: BinaryIO, size: int) -> list[tuple[Arrays, Arrays]]:
    """Each layer's record and arrays (by key), the arrays read only once what the directory and
    the header say of them is checked: what cannot be a model is refused from the directory alone.

    Spec: IO-BOUNDED, IO-LIMITS, IO-LOAD-CHECKS
    """
    if (count := _declared_members(handle, size) or 0) > MAX_MEMBERS:
        raise ModelFileError(
            f"its zip directory lists {count}{' or more' * (count == 0xFFFF)} members; "
            f"a model has at most {MAX_MEMBERS} ({MAX_LAYERS} layers)"
        )
    infos = (zf := zipfile.ZipFile(handle)).infolist()
    if len(infos) > MAX_MEMBERS:
        raise ModelFileError(f"has {len(infos)} members; a model has at most {MAX_MEMBERS}")
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED:
            raise ModelFileError(
                f"member {_cut(repr(info.filename))} is compressed (zip method "
                f"{info.compress_type}); refnn reads uncompressed members only, as np.savez "
                "writes them (not np.savez_compressed)"
            )
    names = {info.filename: info for info in infos}
    if len(names) < len(infos) or sum(i.file_size for i in infos) > size:
        raise ModelFileError("its members repeat or declare more bytes than the file holds")
    if HEADER_KEY + ".npy" not in names:
        raise ModelFileError(f"has no {HEADER_KEY!r} header (a 0-d unicode array)")
    layer_of = {n: _MEMBER.fullmatch(n) for n in names if n != HEADER_KEY + ".npy"}
    if stray := sorted(n for n, m in layer_of.items() if not m or int(m[1]) >= MAX_LAYERS):
        if bad := [n for n in stray if not n.endswith(".npy")]:
            raise ModelFileError(f"member {_cut(repr(bad[0]))} is not a .npy array")
        stray = [n.removesuffix(".npy") for n in stray]
        raise ModelFileError(f"holds array(s) {_cut(repr(stray))} of no layer")
    header = _npy(zf, names.pop(HEADER_KEY + ".npy"))
    if header.shape or header.dtype.kind != "U":
        raise ModelFileError(f"has no {HEADER_KEY!r} header (a 0-d unicode array)")
    records = _records(str(header[()]))
    if unlisted := sorted(n[:-4] for n, m in layer_of.items() if m and int(m[1]) >= len(records)):
        raise ModelFileError(f"holds array(s) {_cut(repr(unlisted))} of no layer")
    stored: list[Arrays] = [{} for _ in records]
    for n, info in names.items():
        if found := layer_of[n]:
            stored[int(found[1])][found[2]] = _npy(zf, info)
    return list(zip(records, stored, strict=True))


def _json(text: str) -> Any:
    """JSON text parsed, refusing an object that repeats a key (IO-HEADER) and, as soon as it
    is found, an object beyond the first ``MAX_HEADER_OBJECTS`` (IO-LIMITS)."""
    count = 0

    def unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal count
        if (count := count + 1) > MAX_HEADER_OBJECTS:
            raise ModelFileError(
                f"its header holds more than {MAX_HEADER_OBJECTS} JSON objects, more than "
                f"{MAX_LAYERS} layers' worth; load reads at most that"
            )
        seen: dict[str, Any] = {}
        for key, value in pairs:
            if key in seen:
                raise ModelFileError(f"its header repeats the key {_cut(repr(key))} in an object")
            seen[key] = value
        return seen

    return json.loads(text, object_pairs_hook=unique)


def _records(text: str) -> list[Arrays]:
    """The layer records of a header: one unambiguous JSON object, every key known.

    Spec: IO-HEADER, IO-LIMITS
    """
    header = _json(text)
    if not isinstance(header, dict) or header.get("format") != FORMAT_NAME:
        raise ModelFileError(f"is not a {FORMAT_NAME!r} file: its header is {_cut(str(header))}")
    if (version := header.get("version")) not in (1, 2) or type(version) is not int:
        raise ModelFileError(f"has format version {_cut(repr(version))}; this refnn reads 1 and 2")
    if unknown := sorted(set(header) - set(HEADER_KEYS[version])):
        raise ModelFileError(
            f"its header has unknown key(s) {_cut(repr(unknown))}; "
            f"a version {version} header holds {HEADER_KEYS[version]}"
        )
    records = header.get("layers")
    if not (isinstance(records, list) and records and all(isinstance(r, dict) for r in records)):
        raise ModelFileError(f"its header must list layers (objects), got {_cut(repr(records))}")
    if len(records) > MAX_LAYERS:
        raise ModelFileError(f"its header lists {len(records)} layers; load reads {MAX_LAYERS}")
    for i, record in enumerate(records):
        if unknown := sorted(set(record) - set(RECORD_KEYS[version])):
            raise ModelFileError(
                f"layer {i} has unknown key(s) {_cut(repr(unknown))}; "
                f"a version {version} layer holds {RECORD_KEYS[version]}"
            )
    return records


def _build(i: int, record: Arrays, mine: Arrays, registry: Registry, rng: Any) -> Layer[Any]:
    """Build layer ``i`` once its config implies exactly its stored arrays ``mine``, then fill
    it."""
    kind, config = record.get("type"), record.get("config")
    if not isinstance(kind, str) or kind not in registry or not isinstance(config, dict):
        known = _cut(str(sorted(registry)))
        raise ModelFileError(f"layer {i} must be one of {known}, got {_cut(repr(record))}")
    try:
        implied = implied_shapes(registry[kind], config)
        if implied is not None and implied != {k: a.shape for k, a in mine.items()}:
            raise ValueError(f"it implies parameters {implied}, the file holds {_meta(mine)}")
        layer = _construct(registry[kind], config, rng)
    except (TypeError, ValueError, KeyError) as err:
        raise ModelFileError(
            f"layer {i} ({kind}): config {_cut(repr(config))} is refused: {_cut(str(err))}"
        ) from err
    if (found := _meta(mine)) != (wanted := _meta(_stored(layer))):
        raise ModelFileError(
            f"layer {i}: {_cut(repr(layer))} has parameters {_cut(str(wanted))}, "
            f"the file {_cut(str(found))}"
        )
    for key, target in _stored(layer).items():
        if not np.isfinite(mine[key]).all():
            raise ModelFileError(f"parameter '{i}.{key}' ({kind}) holds NaN or Inf")
        np.copyto(target, mine[key], casting="no")
    return layer


def _difference(model: Sequential, expect: Sequential) -> str:
    """Where two models' layer types and configs first differ (as ``repr`` shows them), or ''."""
    ours, theirs = [repr(x) for x in model.layers], [repr(x) for x in expect.layers]
    for i, (a, b) in enumerate(zip(ours, theirs, strict=False)):
        if a != b:
            return f"its layer {i} is {_cut(a)}; expected {_cut(b)}"
    return f"it has {len(ours)} layers; expected {len(theirs)}" if ours != theirs else ""


def _meta(arrays: Arrays) -> dict[str, str]:
    return {k: f"{a.dtype.str}{list(a.shape)}" for k, a in arrays.items()}


def _npy(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> np.ndarray[Any, Any]:
    """A .npy member, read only once its header's shape and dtype match the member's size."""
    where = f"member {_cut(repr(info.filename))}"
    with zf.open(info) as member:
        version = np.lib.format.read_magic(member)
        if version not in ((1, 0), (2, 0)):
            raise ModelFileError(
                f"{where} is .npy format {version[0]}.{version[1]}; refnn "
                "reads formats 1.0 and 2.0 (what np.save writes for numbers)"
            )
        read = getattr(np.lib.format, f"read_array_header_{version[0]}_0")
        shape, fortran, dtype = read(member)
        size = math.prod(shape) * dtype.itemsize
        if dtype.hasobject or member.tell() + size != info.file_size:
            raise ModelFileError(f"{where} is not a plain .npy array of its size")
        data = member.read(size)  # the zip CRC-32 is checked on reading the last byte
    return np.frombuffer(data, dtype).reshape(shape, order="F" if fortran else "C")


__all__ = [
    "FORMAT_VERSION",
    "MAX_HEADER_OBJECTS",
    "MAX_LAYERS",
    "MAX_MEMBERS",
    "ModelFileError",
    "load",
    "save",
]
