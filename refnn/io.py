"""Saving and loading models as .npz files with a JSON header (IO-*, ``specs/io.md``).

    save(model, "model.npz")        # atomic: the old file is replaced whole or not at all
    model = load("model.npz")       # every check fails with ModelFileError (a ValueError)

The format, in short: one uncompressed ``.npz`` archive whose member ``"__refnn__"`` is a 0-d
unicode array holding a JSON header (format name, version, and for each layer its class name,
its ``config()`` and the shape, dtype and SHA-256 of each parameter), and one member per
parameter named ``"<layer index>.<key>"`` (``"0.W"``). Nothing is pickled, and a layer is
rebuilt only from a class that refnn exports (or that the caller passes in ``layers=``): the
file names a class, it never names code to import.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import io
import json
import os
import re
import stat
import tempfile
import zipfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from refnn._validate import check_rng
from refnn.layer import Layer
from refnn.model import Sequential
from refnn.types import FloatArray

#: The value of the header's "format" field.
FORMAT_NAME = "refnn.model"
#: The format version this module writes and the only one it reads.
FORMAT_VERSION = 1
#: The name of the header member inside the .npz archive.
HEADER_KEY = "__refnn__"

_MAX_HEADER_BYTES = 16 * 2**20
_NPY_HEADER_SLACK = 64 * 2**10  # a .npy member is its data plus a small header
_PARAM_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

PathLike = str | os.PathLike[str]


class ModelFileError(ValueError):
    """A model file cannot be loaded: the message names the file and what is wrong with it."""


def public_layer_classes(extra: Iterable[type[Layer[Any]]] = ()) -> dict[str, type[Layer[Any]]]:
    """The layer classes a file may name: refnn's exported concrete Layer subclasses + ``extra``.

    Parameters
    ----------
    extra : iterable of Layer subclasses
        Classes the caller trusts in addition (e.g. a layer defined in an application).

    Returns
    -------
    dict
        Class name -> class.
    """
    import refnn  # late: refnn/__init__ imports this module

    found: dict[str, type[Layer[Any]]] = {}
    for name in refnn.__all__:
        obj = getattr(refnn, name, None)
        if isinstance(obj, type) and issubclass(obj, Layer) and not inspect.isabstract(obj):
            found[obj.__name__] = obj
    for cls in extra:
        if not (isinstance(cls, type) and issubclass(cls, Layer)):
            raise TypeError(f"layers must hold Layer subclasses, got {cls!r}")
        known = found.get(cls.__name__)
        if known is not None and known is not cls:
            raise ValueError(
                f"layers: {cls.__module__}.{cls.__qualname__} has the same name as "
                f"{known.__module__}.{known.__qualname__}; layer class names must be unique"
            )
        found[cls.__name__] = cls
    return found


def _sha256(a: np.ndarray[Any, Any]) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


def _build_layer(
    cls: type[Layer[Any]], config: Mapping[str, Any], rng: np.random.Generator | None = None
) -> Layer[Any]:
    """Construct ``cls(**config)``, passing ``rng`` when the constructor takes one.

    Parameters a layer draws from ``rng`` are overwritten by the caller (the file's arrays); a
    layer that keeps the generator (Dropout's masks) goes on drawing from it. The default is a
    fixed local generator: numpy's global state is never touched (NOTE-RNG).
    """
    kwargs = dict(config)
    if "rng" in inspect.signature(cls).parameters:
        kwargs["rng"] = rng if rng is not None else np.random.default_rng(0)
    return cls(**kwargs)


def _layer_record(
    i: int, layer: Layer[Any], registry: Mapping[str, type[Layer[Any]]]
) -> dict[str, Any]:
    """The header entry of one layer, after checking that a load will rebuild it."""
    cls = type(layer)
    name = cls.__name__
    if registry.get(name) is not cls:
        raise TypeError(
            f"layer {i}: {cls.__module__}.{cls.__qualname__} is not one of refnn's public layer "
            "classes; pass it in layers=(...) to save and to load"
        )
    config = layer.config()
    if "rng" in config:
        raise ValueError(f"layer {i} ({name}): config() must not contain 'rng'")
    try:
        config_json = json.loads(json.dumps(config, allow_nan=False))
    except (TypeError, ValueError) as err:
        raise ValueError(f"layer {i} ({name}): config() is not plain JSON ({err})") from err
    try:
        rebuilt = _build_layer(cls, config_json)
    except (TypeError, ValueError) as err:
        raise ValueError(
            f"layer {i} ({name}): its config() {config_json} does not rebuild it: {err}"
        ) from err
    if json.loads(json.dumps(rebuilt.config())) != config_json:
        raise ValueError(
            f"layer {i} ({name}): rebuilding from config() {config_json} gives "
            f"{rebuilt.config()}; config() must return the constructor arguments"
        )
    params: dict[str, Any] = {}
    for key, value in layer.params.items():
        if not _PARAM_KEY.match(key):
            raise ValueError(f"layer {i} ({name}): parameter name {key!r} is not an identifier")
        expected = rebuilt.params.get(key)
        if expected is None or expected.shape != value.shape or expected.dtype != value.dtype:
            raise ValueError(
                f"layer {i} ({name}): parameter {key!r} {value.dtype}{list(value.shape)} does "
                "not match what its config() builds"
            )
        params[key] = {
            "shape": list(value.shape),
            "dtype": value.dtype.name,
            "sha256": _sha256(value),
        }
    if set(params) != set(rebuilt.params):
        raise ValueError(
            f"layer {i} ({name}): parameters {sorted(layer.params)} do not match "
            f"what its config() builds ({sorted(rebuilt.params)})"
        )
    return {"type": name, "config": config_json, "params": params}


def encode(model: Sequential, *, layers: Iterable[type[Layer[Any]]] = ()) -> bytes:
    """The bytes ``save`` writes: a .npz archive of the header and the parameters.

    Notes
    -----
    Spec: IO-FORMAT

    Members ``"__refnn__"`` (0-d unicode array, the JSON header) and ``"<l>.<key>"`` (the
    parameters, C order, their own dtype); ``np.savez`` with ``allow_pickle=False``.
    """
    import refnn

    if not isinstance(model, Sequential):
        raise TypeError(f"model must be a refnn Sequential, got {type(model).__name__}")
    registry = public_layer_classes(layers)
    records = [_layer_record(i, layer, registry) for i, layer in enumerate(model.layers)]
    header = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "refnn": refnn.__version__,
        "layers": records,
    }
    arrays: dict[str, np.ndarray[Any, Any]] = {
        HEADER_KEY: np.array(json.dumps(header, allow_nan=False))
    }
    for i, layer in enumerate(model.layers):
        for key, value in layer.params.items():
            arrays[f"{i}.{key}"] = np.ascontiguousarray(value)
    buffer = io.BytesIO()
    np.savez(buffer, allow_pickle=False, **arrays)
    return buffer.getvalue()


def write_atomic(path: PathLike, data: bytes) -> None:
    """Replace the file at ``path`` by ``data``, whole or not at all.

    Notes
    -----
    Spec: IO-ATOMIC

    Write a temporary file in the same directory, flush and fsync it, ``os.replace`` it over
    ``path``, then fsync the directory. On any error before the rename the temporary file is
    removed and ``path`` is untouched. An existing file's permission bits are kept; a new file
    gets 0o644.
    """
    target = Path(os.fspath(path))
    directory = target.parent if str(target.parent) else Path(".")
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o644
    if not directory.is_dir():
        raise FileNotFoundError(f"cannot save to {target}: directory {directory} does not exist")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        os.replace(tmp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp_name)
        raise
    _fsync_directory(directory)


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def save(model: Sequential, path: PathLike, *, layers: Iterable[type[Layer[Any]]] = ()) -> None:
    """Write ``model`` to ``path`` as a .npz file (``specs/io.md``), atomically.

    Parameters
    ----------
    model : Sequential
        Built from refnn's public layers (or from classes passed in ``layers``).
    path : str or os.PathLike
        Used exactly as given (no ".npz" is appended); ".npz" is the suggested suffix.
    layers : iterable of Layer subclasses
        Extra layer classes to accept (the same must then be passed to ``load``).

    Raises
    ------
    TypeError
        ``model`` is not a Sequential, or holds a layer class refnn does not know.
    ValueError
        A layer's ``config()`` is not plain JSON or does not rebuild it (checked before writing,
        so every file ``save`` writes can be loaded).

    Notes
    -----
    Spec: IO-FORMAT, IO-ATOMIC
    """
    write_atomic(path, encode(model, layers=layers))


class _Reader:
    """Decodes one file's bytes; every problem becomes a ModelFileError naming the file."""

    def __init__(self, data: bytes, source: str) -> None:
        self.source = source
        self.data = data

    def fail(self, problem: str) -> ModelFileError:
        return ModelFileError(f"{self.source}: {problem}")

    def archive(self) -> Any:
        # zip (.npz), .npy and pickle (protocol >= 2) each announce themselves in the first bytes;
        # anything else (JSON, CSV, text) is not a model file at all, whatever np.load would say
        if self.data and not self.data.startswith((b"PK", b"\x93NUMPY", b"\x80")):
            raise self.fail(
                f"is not a refnn model (.npz archive): it begins with {self.data[:16]!r}"
            )
        try:
            loaded = np.load(io.BytesIO(self.data), allow_pickle=False)
        except ValueError as err:
            if "pickle" in str(err):
                raise self.fail(f"holds pickled data, which refnn never reads ({err})") from err
            raise self.fail(f"is not a readable .npz archive ({err})") from err
        except Exception as err:  # BadZipFile, EOFError, NotImplementedError, ...: damaged bytes
            raise self.fail(
                f"is not a readable .npz archive (truncated or corrupted: "
                f"{type(err).__name__}: {err})"
            ) from err
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise self.fail("is a single .npy array, not a refnn model (.npz archive)")
        return loaded

    def member(self, archive: Any, name: str, *, max_bytes: int) -> np.ndarray[Any, Any]:
        info = archive.zip.getinfo(f"{name}.npy")
        if info.file_size > max_bytes:
            raise self.fail(
                f"array {name!r} takes {info.file_size} bytes, more than the header allows "
                f"({max_bytes}); the file is corrupted or from another model"
            )
        try:
            value: np.ndarray[Any, Any] = archive[name]
        except ValueError as err:
            if "pickle" in str(err) or "bject arrays" in str(err):
                raise self.fail(
                    f"array {name!r} is an object array, which needs pickle; refused ({err})"
                ) from err
            raise self.fail(f"array {name!r} cannot be read ({err})") from err
        except (zipfile.BadZipFile, EOFError, OSError, KeyError) as err:
            raise self.fail(f"array {name!r} is corrupted ({err})") from err
        except Exception as err:  # zlib.error, struct.error, ...: any damage in the bytes
            raise self.fail(f"array {name!r} is corrupted ({type(err).__name__}: {err})") from err
        return value

    def header(self, archive: Any) -> dict[str, Any]:
        if HEADER_KEY not in archive.files:
            raise self.fail(
                f"has no {HEADER_KEY!r} header: not a model file written by refnn.save "
                f"(members: {sorted(archive.files)[:8]})"
            )
        raw = self.member(archive, HEADER_KEY, max_bytes=_MAX_HEADER_BYTES)
        if raw.ndim != 0 or raw.dtype.kind != "U":
            raise self.fail(f"header must be a 0-d unicode array, got {raw.dtype}{raw.shape}")
        try:
            header = json.loads(str(raw[()]))
        except json.JSONDecodeError as err:
            raise self.fail(f"header is not valid JSON ({err})") from err
        if not isinstance(header, dict):
            raise self.fail(f"header must be a JSON object, got {type(header).__name__}")
        if header.get("format") != FORMAT_NAME:
            raise self.fail(f"header format must be {FORMAT_NAME!r}, got {header.get('format')!r}")
        version = header.get("version")
        if version != FORMAT_VERSION or isinstance(version, bool):
            raise self.fail(
                f"format version {version!r} is not supported: this refnn reads version "
                f"{FORMAT_VERSION} only"
            )
        return header

    def layer_records(self, header: Mapping[str, Any]) -> list[dict[str, Any]]:
        records = header.get("layers")
        if not isinstance(records, list) or not records:
            raise self.fail(f"header 'layers' must be a non-empty list, got {records!r:.80}")
        for i, rec in enumerate(records):
            ok = (
                isinstance(rec, dict)
                and isinstance(rec.get("type"), str)
                and isinstance(rec.get("config"), dict)
                and isinstance(rec.get("params"), dict)
                and all(_valid_param_meta(k, v) for k, v in rec["params"].items())
            )
            if not ok:
                raise self.fail(
                    f"header entry of layer {i} is malformed (expected type, config, params with "
                    f"shape, dtype, sha256): {rec!r:.200}"
                )
        out: list[dict[str, Any]] = records
        return out


def _valid_param_meta(key: object, meta: object) -> bool:
    if not isinstance(key, str) or not _PARAM_KEY.match(key) or not isinstance(meta, dict):
        return False
    shape, dtype, digest = meta.get("shape"), meta.get("dtype"), meta.get("sha256")
    return (
        isinstance(shape, list)
        and all(isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape)
        and dtype in ("float64", "float32")
        and isinstance(digest, str)
    )


def _architecture(model: Sequential) -> list[tuple[str, dict[str, Any]]]:
    return [
        (type(layer).__name__, json.loads(json.dumps(layer.config()))) for layer in model.layers
    ]


def _check_expected(reader: _Reader, records: list[dict[str, Any]], expect: Sequential) -> None:
    """Refuse a file whose architecture differs from ``expect``'s, naming the first difference."""
    wanted = _architecture(expect)
    found = [(rec["type"], rec["config"]) for rec in records]
    if len(found) != len(wanted):
        raise reader.fail(
            f"holds another architecture: {len(found)} layers "
            f"({', '.join(t for t, _ in found)}), expected {len(wanted)} "
            f"({', '.join(t for t, _ in wanted)})"
        )
    for i, ((f_type, f_cfg), (w_type, w_cfg)) in enumerate(zip(found, wanted, strict=True)):
        if f_type != w_type or f_cfg != w_cfg:
            raise reader.fail(
                f"holds another architecture: layer {i} is {f_type}({f_cfg}), "
                f"expected {w_type}({w_cfg})"
            )


def decode(
    data: bytes,
    *,
    source: str = "<bytes>",
    expect: Sequential | None = None,
    layers: Iterable[type[Layer[Any]]] = (),
    rng: np.random.Generator | None = None,
) -> Sequential:
    """Rebuild a model from the bytes of a file ``save`` wrote (see ``load``).

    Notes
    -----
    Spec: IO-LOAD-CHECKS, IO-ROUNDTRIP

    Header first (format, version, layer types among the trusted classes, configs), then the
    member set, then each array: size before reading, dtype and shape against the header and the
    rebuilt layer, SHA-256; the values are copied into the rebuilt layers' own arrays bit for bit.
    """
    reader = _Reader(data, source)
    registry = public_layer_classes(layers)
    generator = check_rng(rng) if rng is not None else np.random.default_rng(0)
    with reader.archive() as archive:
        header = reader.header(archive)
        records = reader.layer_records(header)
        if expect is not None:
            _check_expected(reader, records, expect)
        expected_members = {HEADER_KEY} | {
            f"{i}.{key}" for i, rec in enumerate(records) for key in rec["params"]
        }
        present = set(archive.files)
        if missing := sorted(expected_members - present):
            raise reader.fail(f"is missing array(s) {missing} that its header lists")
        if extra := sorted(present - expected_members):
            raise reader.fail(f"holds array(s) {extra} that its header does not list")
        built: list[Layer[Any]] = []
        for i, rec in enumerate(records):
            built.append(_rebuild(reader, archive, registry, i, rec, generator))
    return Sequential(built)


def _rebuild(
    reader: _Reader,
    archive: Any,
    registry: Mapping[str, type[Layer[Any]]],
    i: int,
    rec: Mapping[str, Any],
    rng: np.random.Generator,
) -> Layer[Any]:
    name: str = rec["type"]
    cls = registry.get(name)
    if cls is None:
        raise reader.fail(
            f"layer {i} has unknown type {name!r}; known layer types: {sorted(registry)} "
            "(pass application layers in layers=...)"
        )
    config: dict[str, Any] = rec["config"]
    if "rng" in config:
        raise reader.fail(f"layer {i} ({name}) config must not contain 'rng'")
    try:
        layer = _build_layer(cls, config, rng)
    except (TypeError, ValueError) as err:
        raise reader.fail(f"layer {i} ({name}) config {config} is refused: {err}") from err
    metas: dict[str, dict[str, Any]] = rec["params"]
    if set(metas) != set(layer.params):
        raise reader.fail(
            f"layer {i} ({name}) has parameters {sorted(layer.params)}, the file lists "
            f"{sorted(metas)}"
        )
    for key, meta in metas.items():
        target: FloatArray = layer.params[key]
        label = f"{i}.{key}"
        shape = tuple(meta["shape"])
        if shape != target.shape or meta["dtype"] != target.dtype.name:
            raise reader.fail(
                f"array {label!r}: {name}({_kwargs(config)}) expects {target.dtype.name}"
                f"{list(target.shape)}, the header says {meta['dtype']}{list(shape)}"
            )
        nbytes = int(np.prod(shape, dtype=np.int64)) * target.dtype.itemsize
        value = reader.member(archive, label, max_bytes=nbytes + _NPY_HEADER_SLACK)
        if value.shape != target.shape or value.dtype != target.dtype:
            raise reader.fail(
                f"array {label!r} is {value.dtype}{list(value.shape)}, but {name}"
                f"({_kwargs(config)}) expects {target.dtype}{list(target.shape)}"
            )
        if _sha256(value) != meta["sha256"]:
            raise reader.fail(
                f"array {label!r} does not match the SHA-256 digest in the header: corrupted"
            )
        np.copyto(target, value, casting="no")
    return layer


def _kwargs(config: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in config.items())


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
        When given, the file must describe the same architecture (layer types and configs);
        otherwise ModelFileError names the first difference. ``expect`` itself is not changed.
    layers : iterable of Layer subclasses
        Extra trusted layer classes (those passed to ``save``).
    rng : numpy.random.Generator, optional
        Passed to the constructors that take ``rng=``: the weights they draw are overwritten by
        the file's, and a layer that keeps drawing (Dropout's masks in training) draws from it.
        Default: ``np.random.default_rng(0)``, one for the whole model.

    Returns
    -------
    Sequential
        New layers with the saved parameters (bit-identical predictions to the saved model).

    Raises
    ------
    ModelFileError
        The file is truncated, corrupted, not a refnn model, of another format version, names
        an unknown layer type, holds arrays of the wrong shape or dtype, or describes another
        architecture than ``expect`` (``specs/io.md``, IO-LOAD-CHECKS).
    OSError
        The file cannot be opened.

    Notes
    -----
    Spec: IO-LOAD-CHECKS, IO-ROUNDTRIP
    """
    with open(path, "rb") as handle:
        data = handle.read()
    return decode(data, source=os.fspath(path), expect=expect, layers=layers, rng=rng)


__all__ = [
    "FORMAT_VERSION",
    "ModelFileError",
    "decode",
    "encode",
    "load",
    "public_layer_classes",
    "save",
    "write_atomic",
]
