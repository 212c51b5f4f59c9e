"""Saving and loading models: IO-FORMAT, IO-ATOMIC, IO-PATH, IO-FINITE, IO-BOUNDED,
IO-LOAD-CHECKS, IO-ROUNDTRIP. Layer classes come from the top-level ``refnn`` package only."""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import subprocess
import sys
import time
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import refnn
from refnn import (
    LSTM,
    AvgPool2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    LastStep,
    Layer,
    MaxPool2D,
    ModelFileError,
    ReLU,
    Sequential,
    Sigmoid,
    Softmax,
    Tanh,
    load,
    mlp,
    save,
)
from refnn.io import FORMAT_VERSION, HEADER_KEY
from refnn.registry import components
from refnn.types import DTypeLike
from refnn.verify.builders import example_input, example_maker

Arrays = dict[str, np.ndarray[Any, Any]]
ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------------------------
# helpers


def normal(seed: int, *shape: int) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).standard_normal(shape)


def small_model(seed: int = 0) -> Sequential:
    """Dense-ReLU-Dense-Sigmoid, float64, with non-zero biases (so b is really saved)."""
    model = mlp([3, 4, 2], rng=np.random.default_rng(seed))
    for layer in model.layers:
        if "b" in layer.params:
            layer.params["b"][...] = normal(seed + 1, *layer.params["b"].shape)
    return model


def read_members(path: Path) -> tuple[dict[str, Any], Arrays]:
    """The header (parsed) and the parameter arrays of a saved file."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    header = json.loads(str(arrays.pop(HEADER_KEY)[()]))
    return header, arrays


def write_members(path: Path, header: object, arrays: Arrays, **raw: Any) -> None:
    """Write a (possibly malformed) model file: header as JSON text, arrays, extra raw members."""
    members: dict[str, Any] = dict(arrays)
    if header is not None:
        members[HEADER_KEY] = np.array(json.dumps(header))
    members.update(raw)
    np.savez(path, **members)


def tampered(
    tmp_path: Path, change: Callable[[dict[str, Any], Arrays], object], name: str = "bad.npz"
) -> Path:
    """Save the small model, let ``change`` edit its header and arrays, write them back."""
    good = tmp_path / "good.npz"
    save(small_model(), good)
    header, arrays = read_members(good)
    change(header, arrays)
    bad = tmp_path / name
    write_members(bad, header, arrays)
    return bad


def same_model(a: Sequential, b: Sequential) -> None:
    assert [type(x) for x in a.layers] == [type(y) for y in b.layers]
    assert [x.config() for x in a.layers] == [y.config() for y in b.layers]
    for x, y in zip(a.layers, b.layers, strict=True):
        assert list(x.params) == list(y.params)
        for key in x.params:
            assert x.params[key].dtype == y.params[key].dtype
            assert x.params[key].shape == y.params[key].shape
            assert x.params[key].tobytes() == y.params[key].tobytes()


def load_bytes(tmp_path: Path, data: bytes, name: str = "x.npz") -> Sequential:
    path = tmp_path / name
    path.write_bytes(data)
    return load(path)


# ---------------------------------------------------------------------------------------------
# round trips


@st.composite
def architectures(draw: st.DrawFn) -> tuple[Sequential, np.ndarray[Any, Any]]:
    """A random stack of refnn's layers and an input it accepts."""
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    dtypes: st.SearchStrategy[DTypeLike] = st.sampled_from(["float64", "float32"])
    activation = st.sampled_from(["relu", "sigmoid", "tanh", "softmax", "dropout", None])

    def add_activation() -> None:
        act, dtype = draw(activation), draw(dtypes)
        if act == "relu":
            layers.append(ReLU(dtype=dtype))
        elif act == "sigmoid":
            layers.append(Sigmoid(dtype=dtype))
        elif act == "tanh":
            layers.append(Tanh(dtype=dtype))
        elif act == "softmax":
            layers.append(Softmax(dtype=dtype))
        elif act == "dropout":
            layers.append(Dropout(draw(st.sampled_from([0.0, 0.25, 0.5])), rng=rng, dtype=dtype))

    layers: list[Layer[Any]] = []
    m = draw(st.integers(1, 5))
    family = draw(st.sampled_from(["dense", "recurrent", "conv"]))
    event(family)
    if family == "conv":  # images C x H x W x m -> conv/pool stack -> Flatten -> Dense
        c = c0 = draw(st.integers(1, 3))
        h = w = h0 = draw(st.integers(4, 7))
        for _ in range(draw(st.integers(1, 2))):
            f = draw(st.integers(1, 4))
            pad = draw(st.sampled_from([0, 1]))
            kh = draw(st.integers(1, min(3, h + 2 * pad)))  # the kernel fits the padded input
            kw = draw(st.integers(1, min(3, w + 2 * pad)))
            sh, sw = draw(st.tuples(st.integers(1, 2), st.integers(1, 2)))
            layers.append(
                Conv2D(c, f, (kh, kw), stride=(sh, sw), padding=pad, rng=rng, dtype=draw(dtypes))
            )
            c, h, w = f, (h + 2 * pad - kh) // sh + 1, (w + 2 * pad - kw) // sw + 1
            add_activation()
            if h >= 2 and w >= 2 and draw(st.booleans()):
                pools: list[type[MaxPool2D | AvgPool2D]] = [MaxPool2D, AvgPool2D]
                pool = draw(st.sampled_from(pools))
                step = draw(st.sampled_from([2, 1]))
                layers.append(pool(2, stride=step, dtype=draw(dtypes)))
                h, w = (h - 2) // step + 1, (w - 2) // step + 1
        layers.append(Flatten(dtype=draw(dtypes)))
        layers.append(Dense(c * h * w, draw(st.integers(1, 4)), rng=rng, dtype=draw(dtypes)))
        X = normal(seed, c0, h0, h0, m)
    elif family == "dense":  # dense stack over X (n, m)
        n = n0 = draw(st.integers(1, 6))
        for _ in range(draw(st.integers(1, 4))):
            n_out = draw(st.integers(1, 6))
            inits: list[Literal["he", "xavier"]] = ["he", "xavier"]
            init = draw(st.sampled_from(inits))
            layers.append(Dense(n, n_out, rng=rng, init=init, dtype=draw(dtypes)))
            add_activation()
            n = n_out
        X = normal(seed, n0, m)
    else:  # recurrent stack over X (n, T, m), maybe ending on the last step
        n = n0 = draw(st.integers(1, 4))
        T = draw(st.integers(1, 4))
        for _ in range(draw(st.integers(1, 2))):
            h = draw(st.integers(1, 4))
            fb = draw(st.sampled_from([0.0, 1.0, -0.5]))
            layers.append(LSTM(n, h, rng=rng, forget_bias=fb, dtype=draw(dtypes)))
            add_activation()
            n = h
        if draw(st.booleans()):
            layers += [LastStep(dtype=draw(dtypes)), Dense(n, 2, rng=rng, dtype=draw(dtypes))]
        X = normal(seed, n0, T, m)
    # move every parameter away from its initial value, so loading cannot pass by re-drawing it
    for layer in layers:
        for value in layer.params.values():
            value += rng.standard_normal(value.shape).astype(value.dtype)
    return Sequential(layers), X


@pytest.mark.spec("IO-ROUNDTRIP", "IO-FORMAT", "IO-BOUNDED")
@settings(max_examples=60)
@given(arch=architectures())
def test_save_then_load_gives_bit_identical_predictions(
    arch: tuple[Sequential, np.ndarray[Any, Any]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    model, X = arch
    path = tmp_path_factory.mktemp("rt") / "model.npz"
    before = model.forward(X, training=False)
    save(model, path)
    loaded = load(path)
    same_model(model, loaded)
    after = loaded.forward(X, training=False)
    assert after.dtype == before.dtype
    assert after.tobytes() == before.tobytes()
    same_model(model, load(path, expect=model))


def each_registered(dtype: Any = np.float64) -> dict[str, Layer[Any]]:
    """An instance of every registered layer class (NOTE-REGISTRY), from its first make-check
    example, after one training forward (so buffers hold batch statistics)."""
    out: dict[str, Layer[Any]] = {}
    for name, cls in components("layer").items():
        example = cls.examples()[0]
        layer = example_maker(cls, example)(np.random.default_rng(0), dtype)
        layer.forward(example_input(layer, "normal", example.shape, 1, dtype=dtype))
        out[name] = layer
    return out


@pytest.mark.spec("IO-ROUNDTRIP", "IO-FORMAT", "NOTE-REGISTRY")
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_every_registered_layer_class_saves_and_loads(tmp_path: Path, dtype: Any) -> None:
    exported = {
        obj.__name__
        for obj in vars(refnn).values()
        if isinstance(obj, type) and issubclass(obj, Layer) and obj is not Layer
    }
    layers = each_registered(dtype)
    assert exported <= set(layers)
    for name, layer in layers.items():
        save(Sequential([layer]), tmp_path / "one.npz")
        same_model(Sequential([layer]), load(tmp_path / "one.npz"))
        loaded = load(tmp_path / "one.npz").layers[0]
        assert type(loaded).__name__ == name
        for key, buffer in layer.buffers.items():
            assert loaded.buffers[key].tobytes() == buffer.tobytes(), (name, key)


@pytest.mark.spec("IO-FORMAT")
def test_the_file_is_a_plain_npz_with_a_json_header(tmp_path: Path) -> None:
    model = small_model()
    path = tmp_path / "m.npz"
    save(model, path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == sorted(
            [f"{HEADER_KEY}.npy", "0.W.npy", "0.b.npy", "2.W.npy", "2.b.npy"]
        )
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())
    header, arrays = read_members(path)  # readable with allow_pickle=False
    assert header == {
        "format": "refnn.model",
        "version": FORMAT_VERSION,
        "layers": [
            {"type": "Dense", "config": {"n_in": 3, "n_out": 4, "init": "he", "dtype": "float64"}},
            {"type": "ReLU", "config": {"dtype": "float64"}},
            {"type": "Dense", "config": {"n_in": 4, "n_out": 2, "init": "he", "dtype": "float64"}},
            {"type": "Sigmoid", "config": {"dtype": "float64"}},
        ],
    }
    assert FORMAT_VERSION == 2
    np.testing.assert_array_equal(arrays["2.W"], model.layers[2].params["W"])


@pytest.mark.spec("IO-FORMAT")
def test_version_1_files_still_load_and_their_digests_are_ignored(tmp_path: Path) -> None:
    def as_version_1(h: dict[str, Any], a: Arrays) -> None:
        h["version"] = 1
        h["refnn"] = "0.1.0"
        for i, rec in enumerate(h["layers"]):
            rec["params"] = {
                k.split(".")[1]: {"shape": list(v.shape), "dtype": v.dtype.name, "sha256": "0"}
                for k, v in a.items()
                if k.startswith(f"{i}.")
            }

    same_model(small_model(), load(tampered(tmp_path, as_version_1)))


@pytest.mark.spec("IO-ROUNDTRIP")
def test_loading_is_independent_of_the_saved_model_and_of_global_random_state(
    tmp_path: Path,
) -> None:
    model = small_model()
    path = tmp_path / "m.npz"
    save(model, path)
    state = np.random.get_state()
    loaded = load(path)
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1])  # type: ignore[index]
    loaded.layers[0].params["W"][0, 0] += 1.0  # the loaded arrays are new ones
    assert loaded.layers[0].params["W"][0, 0] != model.layers[0].params["W"][0, 0]
    save(model, str(tmp_path / "plain"))  # str works as Path does; no suffix is appended
    same_model(model, load(str(tmp_path / "plain")))


class Scaled(Layer[Any]):
    """An application layer (not exported by refnn): A = s X."""

    def __init__(self, s: float = 2.0, *, dtype: Any = np.float64) -> None:
        super().__init__(dtype=dtype)
        self.s = float(s)

    def _forward(self, X: Any, training: bool, **inputs: Any) -> tuple[Any, None]:
        return self.s * X, None

    def _backward(self, dY: Any, cache: None) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        return self.s * dY, {}, {}

    def config(self) -> dict[str, Any]:
        return {"s": self.s, **super().config()}


class Renamed(Scaled):
    """Its config() names an argument the constructor does not take."""

    def config(self) -> dict[str, Any]:
        return {"scale": self.s, "dtype": self.dtype.name}


class Unjsonable(Scaled):
    def config(self) -> dict[str, Any]:
        return {"s": self.s, "shape": {1, 2}, "dtype": self.dtype.name}


@pytest.mark.spec("IO-LOAD-CHECKS", "IO-ROUNDTRIP")
def test_application_layers_only_when_the_caller_names_them(tmp_path: Path) -> None:
    model = Sequential([Dense(2, 2, rng=np.random.default_rng(0)), Scaled(3.0)])
    path = tmp_path / "m.npz"
    with pytest.raises(TypeError, match=r"Scaled'> is not a refnn layer; pass it in layers="):
        save(model, path)
    assert not path.exists()
    save(model, path, layers=[Scaled])
    with pytest.raises(ModelFileError, match=r"layer 1 must be one of \[.*'Dense'.*got .*Scaled"):
        load(path)
    loaded = load(path, layers=[Scaled])
    assert isinstance(loaded.layers[1], Scaled) and loaded.layers[1].s == 3.0
    with pytest.raises(ValueError, match=r"layer 0 \(Renamed\): load could not .*'scale'"):
        save(Sequential([Renamed(5.0)]), tmp_path / "r.npz", layers=[Renamed])  # IO-SAVE-CHECKS
    save(Sequential([Scaled(5.0)]), tmp_path / "r.npz", layers=[Scaled])
    header, arrays = read_members(tmp_path / "r.npz")
    header["layers"][0]["config"] = {"scale": 5.0, "dtype": "float64"}  # as Renamed's config
    write_members(tmp_path / "r.npz", header, arrays)
    with pytest.raises(ModelFileError, match=r"layer 0 \(Scaled\): config .* refused: .*'scale'"):
        load(tmp_path / "r.npz", layers=[Scaled])
    with pytest.raises(ValueError, match=r"layer 0 \(Unjsonable\): config\(\) is not plain JSON"):
        save(Sequential([Unjsonable()]), path, layers=[Unjsonable])
    impostor: type[Layer[Any]] = type("Dense", (Dense,), {})  # refnn's name, another class
    with pytest.raises(ValueError, match=r"has the name of <class 'refnn\..*Dense'>"):
        load(path, layers=[impostor])
    with pytest.raises(TypeError, match="concrete Layer subclasses, got <class 'int'>"):
        save(model, path, layers=[int])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"Dense'> is not a refnn layer"):
        save(Sequential([impostor(2, 2, rng=np.random.default_rng(0))]), path)  # type: ignore[call-arg, arg-type]
    with pytest.raises(TypeError, match="model must be a refnn Sequential, got list"):
        save([ReLU()], path)  # type: ignore[arg-type]
    same_model(model, load(path, layers=[Scaled]))  # the failed saves left the last good file


@pytest.mark.spec("IO-ROUNDTRIP")
def test_dropout_draws_its_masks_from_the_generator_passed_to_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    path = tmp_path / "m.npz"
    save(Sequential([Dense(3, 5, rng=rng), Dropout(0.5, rng=rng)]), path)
    X = normal(0, 3, 7)
    masks = []
    for _ in range(2):
        loaded = load(path, rng=np.random.default_rng(42))
        loaded.forward(X, training=True)
        drop = loaded.layers[1]
        assert isinstance(drop, Dropout) and drop.keep_mask is not None
        masks.append(drop.keep_mask)
    np.testing.assert_array_equal(masks[0], masks[1])
    # as if the layers were built in order from that generator (Dense's weights drawn first)
    g = np.random.default_rng(42)
    Dense(3, 5, rng=g)
    expected = Dropout(0.5, rng=g)
    expected.forward(np.ones((5, 7)), training=True)
    np.testing.assert_array_equal(masks[0], expected.keep_mask)
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        load(path, rng=42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"expect must be a refnn Sequential or None, got list"):
        load(path, expect=[Dense(3, 5, rng=rng)])  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# non-finite parameters


@pytest.mark.spec("IO-FINITE")
@given(
    W=hnp.arrays(
        np.float64,
        (4, 3),
        elements=st.floats(-1e300, 1e300) | st.sampled_from([np.nan, np.inf, -np.inf]),
    ),
    key=st.sampled_from(["0.W", "2.b"]),
)
def test_non_finite_parameters_are_refused_by_save_and_by_load(
    W: np.ndarray[Any, Any], key: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("nan")
    model = small_model()
    target = model.layers[int(key[0])].params[key[2:]]
    target[...] = W[: target.shape[0], : target.shape[1]]
    finite = bool(np.isfinite(target).all())
    event(f"finite: {finite}")
    if finite:
        save(model, tmp / "m.npz")
        same_model(model, load(tmp / "m.npz"))
        return
    with pytest.raises(ValueError, match=rf"parameter '{key}' \(Dense\) holds NaN or Inf"):
        save(model, tmp / "m.npz")
    assert not (tmp / "m.npz").exists()

    def put(h: dict[str, Any], a: Arrays) -> None:
        a[key] = target

    with pytest.raises(ModelFileError, match=rf"parameter '{key}' \(Dense\) holds NaN or Inf"):
        load(tampered(tmp, put))


# ---------------------------------------------------------------------------------------------
# paths and atomic writes


@pytest.mark.spec("IO-PATH")
@pytest.mark.parametrize(
    ("path", "error", "message"),
    [
        (b"model.npz", TypeError, "path must be a str or os.PathLike of str, got bytes"),
        (None, TypeError, "got NoneType"),
        ("", ValueError, r"path must name a file .* got ''"),
        ("sub/", ValueError, r"no trailing separator\), got 'sub/'"),
        ("m\0.npz", ValueError, "path must name a file"),
    ],
)
def test_bad_paths_are_refused_by_save_and_by_load(
    path: Any, error: type[Exception], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sub").mkdir()
    save(small_model(), "sub/model.npz")
    with pytest.raises(error, match=message):
        save(small_model(), path)
    with pytest.raises(error, match=message):
        load(path)
    assert sorted(p.name for p in (tmp_path / "sub").iterdir()) == ["model.npz"]


class BytesPath:
    def __fspath__(self) -> bytes:
        return b"model.npz"


@pytest.mark.spec("IO-PATH", "IO-ATOMIC")
def test_paths_to_directories_missing_directories_and_symbolic_links(tmp_path: Path) -> None:
    model = small_model()
    with pytest.raises(TypeError, match=r"os\.PathLike of str, got bytes"):
        save(model, BytesPath())  # type: ignore[arg-type]
    with pytest.raises(FileNotFoundError, match=r"cannot save to '.*nope/m\.npz': No such file"):
        save(model, tmp_path / "nope" / "m.npz")
    (tmp_path / "dir").mkdir()
    with pytest.raises(IsADirectoryError, match=r"cannot save to '.*dir'"):
        save(model, tmp_path / "dir")
    # a symbolic link is followed: the file it names is replaced, the link stays a link
    save(small_model(1), tmp_path / "real.npz")
    (tmp_path / "link.npz").symlink_to("real.npz")
    save(model, tmp_path / "link.npz")
    assert (tmp_path / "link.npz").is_symlink()
    same_model(model, load(tmp_path / "real.npz"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dir", "link.npz", "real.npz"]


@pytest.mark.spec("IO-ATOMIC")
def test_a_failed_write_or_an_interrupt_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.npz"
    save(small_model(0), path)
    os.chmod(path, 0o600)
    good = path.read_bytes()

    def fail(error: BaseException) -> Callable[..., None]:
        def raiser(*args: Any) -> None:
            raise error

        return raiser

    for name, error in [
        ("replace", OSError(28, "No space left on device")),
        ("fsync", OSError("I/O error (simulated)")),
        ("replace", KeyboardInterrupt()),
    ]:
        monkeypatch.setattr(os, name, fail(error))
        with pytest.raises(type(error)) as info:
            save(small_model(1), path)
        monkeypatch.undo()
        if isinstance(error, OSError):  # the user's path, not the temporary file
            assert f"cannot save to '{path}': {error.strerror or error}" in str(info.value)
        assert path.read_bytes() == good
        assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]
    # a successful save replaces the file and keeps its permission bits
    save(small_model(1), path)
    same_model(load(path), small_model(1))
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


@pytest.mark.spec("IO-ATOMIC")
def test_a_read_only_directory_is_reported_with_the_users_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_open = os.open

    def read_only(file: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        if flags & os.O_CREAT:  # what a read-only directory does to a new file
            raise PermissionError(13, "Permission denied", file)
        return real_open(file, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", read_only)
    path = tmp_path / "m.npz"
    with pytest.raises(PermissionError, match=rf"^\[Errno 13\] cannot save to '{path}': Perm"):
        save(small_model(), path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.spec("IO-ATOMIC")
@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes anywhere")
def test_a_really_read_only_directory(tmp_path: Path) -> None:
    os.chmod(tmp_path, 0o555)
    try:
        with pytest.raises(PermissionError, match=r"cannot save to '.*m\.npz': Permission"):
            save(small_model(), tmp_path / "m.npz")
    finally:
        os.chmod(tmp_path, 0o755)


_WRITER = """
import sys
import numpy as np
from refnn import Dense, Sequential, save
path, first = sys.argv[1], int(sys.argv[2])
models = [Sequential([Dense(400, 400, rng=np.random.default_rng(s))]) for s in (1, 2)]
save(models[first], path)
print("ready", flush=True)
i = first
while True:
    i += 1
    save(models[i % 2], path)
"""


def writer(path: Path, first: int) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path), str(first)],
        stdout=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def kill(proc: subprocess.Popen[str]) -> None:
    proc.kill()  # SIGKILL: no cleanup handler runs
    proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


EXPECTED_W = [Dense(400, 400, rng=np.random.default_rng(s)).params["W"] for s in (1, 2)]


@pytest.mark.spec("IO-ATOMIC")
def test_killing_a_writer_mid_save_never_leaves_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    for delay in (0.05, 0.13, 0.31):
        proc = writer(path, 0)
        time.sleep(delay)
        kill(proc)
        W = load(path).layers[0].params["W"]
        assert any(np.array_equal(W, e) for e in EXPECTED_W)
        assert all(p.name.endswith(".refnn-partial") for p in tmp_path.iterdir() if p != path)
    left = sorted(tmp_path.iterdir())
    save(small_model(), path)  # unlocked but new: kept (a writer whose lock is not seen here)
    assert sorted(tmp_path.iterdir()) == left
    hour_ago = time.time() - refnn.io.ABANDONED_AFTER - 60
    for p in left:
        os.utime(p, (hour_ago, hour_ago))
    save(small_model(), path)  # the next save after an hour removes what they left
    assert list(tmp_path.iterdir()) == [path]


@pytest.mark.spec("IO-ATOMIC")
def test_concurrent_writers_and_a_reader(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    procs = [writer(path, 0), writer(path, 1)]
    try:
        seen = set()
        for _ in range(15):
            W = load(path).layers[0].params["W"]
            seen |= {i for i, e in enumerate(EXPECTED_W) if np.array_equal(W, e)}
            assert any(np.array_equal(W, e) for e in EXPECTED_W)
        # neither writer failed: neither removed the other's live temporary file
        assert [proc.poll() for proc in procs] == [None, None]
    finally:
        for proc in procs:
            kill(proc)
    assert seen  # no load ever failed; each saw one of the two whole models


# ---------------------------------------------------------------------------------------------
# damaged and hostile files


@pytest.mark.spec("IO-LOAD-CHECKS")
@settings(max_examples=80)
@given(keep=st.floats(0, 1, exclude_max=True))
def test_every_truncation_is_refused(keep: float, tmp_path_factory: pytest.TempPathFactory) -> None:
    tmp = tmp_path_factory.mktemp("cut")
    save(small_model(), tmp / "m.npz")
    data = (tmp / "m.npz").read_bytes()
    with pytest.raises(ModelFileError, match=r"t\.npz: "):
        load_bytes(tmp, data[: int(keep * len(data))], "t.npz")


@pytest.mark.spec("IO-LOAD-CHECKS")
def test_flipped_bits_are_refused_or_harmless(tmp_path: Path) -> None:
    """A flipped bit either raises ModelFileError or changes nothing the model holds.

    (Some zip bytes carry no meaning for the model: timestamps, "version made by".) One byte in
    five, each with another bit: every file write costs milliseconds.
    """
    model = small_model()
    save(model, tmp_path / "m.npz")
    data = (tmp_path / "m.npz").read_bytes()
    refused = 0
    for i in range(0, len(data), 5):
        flipped = bytearray(data)
        flipped[i] ^= 1 << (i % 8)
        try:
            loaded = load_bytes(tmp_path, bytes(flipped))
        except ModelFileError:
            refused += 1
        else:
            same_model(model, loaded)
    assert refused > 0.8 * len(range(0, len(data), 5))


@pytest.mark.spec("IO-LOAD-CHECKS")
@settings(max_examples=50)
@given(
    damage=st.lists(
        st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), min_size=1, max_size=8
    )
)
def test_random_byte_corruptions_are_refused_or_harmless(
    damage: list[tuple[float, int]], tmp_path_factory: pytest.TempPathFactory
) -> None:
    tmp = tmp_path_factory.mktemp("bytes")
    model = small_model()
    save(model, tmp / "m.npz")
    data = bytearray((tmp / "m.npz").read_bytes())
    for where, value in damage:
        data[int(where * len(data))] = value
    try:
        loaded = load_bytes(tmp, bytes(data))
    except ModelFileError:
        event("refused")
    else:
        same_model(model, loaded)


def npy_member(shape: tuple[int, ...], data: bytes, dtype: str = "<f8") -> bytes:
    """A .npy member whose header declares ``shape`` but holds ``data``."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        out, {"descr": dtype, "fortran_order": False, "shape": shape}
    )
    return out.getvalue() + data


def peak_bytes_of_load(path: Path) -> int:
    tracemalloc.start()
    try:
        with pytest.raises(ModelFileError) as info:
            load(path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        assert info.value is not None


@pytest.mark.spec("IO-BOUNDED")
@settings(max_examples=40)
@given(
    kind=st.sampled_from(["Dense", "Conv2D", "LSTM"]),
    sizes=st.lists(st.integers(1, 10**12), min_size=4, max_size=4),
)
def test_declared_sizes_never_allocate_more_than_the_file_holds(
    kind: str, sizes: list[int], tmp_path_factory: pytest.TempPathFactory
) -> None:
    """A small file declaring a huge layer is refused with little memory (today: 2 GB, 14 s)."""
    tmp = tmp_path_factory.mktemp("huge")
    a, b, c, d = sizes
    config: dict[str, Any] = {
        "Dense": {"n_in": a, "n_out": b, "init": "he", "dtype": "float64"},
        "Conv2D": {
            "in_channels": a,
            "out_channels": b,
            "kernel_size": [c, d],
            "stride": [1, 1],
            "padding": [0, 0],
            "dtype": "float64",
        },
        "LSTM": {"n_in": a, "n_hidden": b, "forget_bias": 1.0, "dtype": "float64"},
    }[kind]
    if kind == "Dense" and (a, b) == (3, 4):
        return  # the stored arrays' true sizes

    def declare(h: dict[str, Any], arr: Arrays) -> None:
        h["layers"][0].update(type=kind, config=config)  # any other keys kept

    path = tampered(tmp, declare)
    assert path.stat().st_size < 20_000  # a few KB declaring up to 10**24 parameters
    assert peak_bytes_of_load(path) < 2**20


@pytest.mark.spec("IO-BOUNDED")
def test_npy_headers_and_zip_sizes_are_checked_before_reading(tmp_path: Path) -> None:
    _, arrays = read_members(tampered(tmp_path, lambda h, a: None))
    header = read_members(tmp_path / "good.npz")[0]
    cases = {
        # a member whose .npy header declares 16000 x 16000 but holds 12 numbers
        "npy.npz": (
            npy_member((16000, 16000), b"\0" * 96),
            r"'0\.W\.npy' is not a plain \.npy array of its size",
        ),
        "short.npz": (npy_member((4, 3), b"\0" * 95), r"'0\.W\.npy' is not a plain \.npy array"),
        "object.npz": (npy_member((4, 3), b"\0" * 96, "|O"), r"'0\.W\.npy' is not a plain"),
    }
    for name, (member, message) in cases.items():
        path = tmp_path / name
        write_members(path, header, {k: v for k, v in arrays.items() if k != "0.W"})
        with zipfile.ZipFile(path, "a") as zf:
            zf.writestr("0.W.npy", member)
        with pytest.raises(ModelFileError, match=message):
            load(path)
        assert peak_bytes_of_load(path) < 2**20
    # a deflated member of 80 MB in a file of 100 KB (a zip bomb): refused before inflating
    bomb = tmp_path / "bomb.npz"
    members: dict[str, Any] = {HEADER_KEY: np.array(json.dumps(header)), **arrays}
    np.savez_compressed(bomb, **members, pad=np.zeros(10**7))
    assert bomb.stat().st_size < 200_000
    with pytest.raises(ModelFileError, match=r"'__refnn__\.npy' is compressed .*np\.savez_compr"):
        load(bomb)
    assert peak_bytes_of_load(bomb) < 2**20


@pytest.mark.spec("IO-LOAD-CHECKS")
def test_members_that_are_not_npy_and_deeply_nested_headers(tmp_path: Path) -> None:
    path = tampered(tmp_path, lambda h, a: None)
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("notes.txt", b"hello")  # np.load gives bytes: today an AttributeError
    with pytest.raises(ModelFileError, match=r"member 'notes\.txt' is not a \.npy array"):
        load(path)
    _, arrays = read_members(tmp_path / "good.npz")
    deep = tmp_path / "deep.npz"
    write_members(deep, None, arrays, __refnn__=np.array("[" * 100_000 + "]" * 100_000))
    with pytest.raises(ModelFileError, match=r"deep\.npz: is not a readable model \(Recursion"):
        load(deep)


@pytest.mark.spec("IO-LOAD-CHECKS")
def test_missing_and_unlisted_arrays_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match=r"layer 2 \(Dense\): config .* the file holds \{'W'"):
        load(tampered(tmp_path, lambda h, a: a.pop("2.b")))

    for stray in (["9.W", "4.b"], ["W"]):  # beyond the header's layers; of no layer at all

        def add(h: dict[str, Any], a: Arrays, stray: list[str] = stray) -> None:
            a.update(dict.fromkeys(stray, np.zeros(3)))

        listed = re.escape(repr(sorted(stray)))
        with pytest.raises(ModelFileError, match=rf"holds array\(s\) {listed} of no layer"):
            load(tampered(tmp_path, add))

    def to_relu(h: dict[str, Any], a: Arrays) -> None:
        a["1.W"] = np.zeros(3)

    with pytest.raises(ModelFileError, match=r"layer 1 \(ReLU\): config .* holds \{'W'"):
        load(tampered(tmp_path, to_relu))


@pytest.mark.spec("IO-LOAD-CHECKS")
def test_wrong_shapes_and_dtypes_are_refused(tmp_path: Path) -> None:
    def wrong_shape(h: dict[str, Any], a: Arrays) -> None:
        a["0.W"] = np.zeros((4, 5))

    with pytest.raises(ModelFileError, match=r"implies parameters \{'W': \(4, 3\)"):
        load(tampered(tmp_path, wrong_shape))

    for dtype in (np.float32, np.int64, ">f8"):

        def wrong_dtype(h: dict[str, Any], a: Arrays, dtype: Any = dtype) -> None:
            a["0.b"] = a["0.b"].astype(dtype)

        with pytest.raises(
            ModelFileError,
            match=r"layer 0: Dense\(.*\) has parameters .*'b': '<f8\[4, 1\]'\}, the file",
        ):
            load(tampered(tmp_path, wrong_dtype))

    def float32_config(h: dict[str, Any], a: Arrays) -> None:
        h["layers"][0]["config"]["dtype"] = "float32"

    with pytest.raises(
        ModelFileError, match=r"dtype='float32'\) has parameters \{'W': '<f4\[4, 3\]'"
    ):
        load(tampered(tmp_path, float32_config))


@pytest.mark.spec("IO-LOAD-CHECKS")
def test_another_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    save(small_model(), path)
    rng = np.random.default_rng(0)
    with pytest.raises(
        ModelFileError,
        match=r"its layer 0 is Dense\(n_in=3, n_out=4, .*; expected Dense\(n_in=3, n_out=2, ",
    ):
        load(path, expect=mlp([3, 2], rng=rng))
    with pytest.raises(
        ModelFileError, match=r"layer 0 is Dense\(.*'float64'\); expected .*float32"
    ):
        load(path, expect=mlp([3, 4, 2], rng=rng, dtype=np.float32))
    same_model(small_model(), load(path, expect=small_model(5)))


@pytest.mark.spec("IO-LOAD-CHECKS")
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda h: h.update(version=3), r"format version 3; this refnn reads 1 and 2"),
        (lambda h: h.update(version="2"), r"format version '2'"),
        (lambda h: h.update(version=True), r"format version True"),
        (lambda h: h.pop("version"), r"format version None"),
        (lambda h: h.update(format="keras"), r"is not a 'refnn.model' file"),
        (lambda h: h.update(layers=[]), r"must list layers \(objects\), got \[\]"),
        (lambda h: h.update(layers={"0": 1}), r"must list layers"),
        (lambda h: h["layers"][0].pop("config"), r"layer 0 must be one of .*got \{'type'"),
        (lambda h: h["layers"][2].update(type=7), r"layer 2 must be one of"),
        (lambda h: h["layers"][1].update(type="os.system"), r"layer 1 must be one of"),
        (lambda h: h["layers"][1].update(type="Layer"), r"layer 1 must be one of"),
        (lambda h: h["layers"].__setitem__(3, 5), r"must list layers \(objects\), got \[\{"),
        (
            lambda h: h["layers"][0]["config"].update(n_in=-3),
            r"implies parameters \{'W': \(4, -3\)",
        ),
        (lambda h: h["layers"][0]["config"].update(n_in=3.0), r"n_in must be an int"),
        (lambda h: h["layers"][1]["config"].update(alpha=0.1), r"unexpected .*'alpha'"),
        (lambda h: h["layers"][1]["config"].update(dtype="object"), r"dtype must be float64"),
        (lambda h: h["layers"][0]["config"].update(rng=5), r"multiple values .*'rng'"),
        (lambda h: h["layers"][0]["config"].pop("n_in"), r"refused: 'n_in'"),
    ],
)
def test_bad_headers_are_refused(
    tmp_path: Path, edit: Callable[[dict[str, Any]], object], message: str
) -> None:
    with pytest.raises(ModelFileError, match=message):
        load(tampered(tmp_path, lambda h, a: edit(h)))


@pytest.mark.spec("IO-LOAD-CHECKS")
def test_files_that_are_not_refnn_models(tmp_path: Path) -> None:
    _, arrays = read_members(tampered(tmp_path, lambda h, a: None))
    cases: dict[str, tuple[Callable[[Path], object], str]] = {
        "no_header.npz": (lambda p: write_members(p, None, arrays), r"has no '__refnn__' header"),
        "text_header.npz": (
            lambda p: write_members(p, None, arrays, __refnn__=np.array("{not json")),
            r"is not a readable model \(JSONDecodeError",
        ),
        "list_header.npz": (lambda p: write_members(p, [1, 2], arrays), r"is not a 'refnn.model'"),
        "numeric_header.npz": (
            lambda p: write_members(p, None, arrays, __refnn__=np.zeros(3)),
            r"has no '__refnn__' header \(a 0-d unicode array\)",
        ),
        "array.npy": (lambda p: np.save(p, np.zeros(3)), r"it begins b'\\x93NUM'"),
        "empty.npz": (lambda p: p.write_bytes(b""), r"empty\.npz: is not a refnn model .* b''"),
        "text.npz": (lambda p: p.write_text("W = [1, 2]\n"), r"it begins b'W = '"),
        "pickle.npz": (lambda p: p.write_bytes(pickle.dumps({"W": 1})), r"it begins b'\\x80"),
    }
    for name, (write, message) in cases.items():
        path = tmp_path / name
        write(path)
        with pytest.raises(ModelFileError, match=message):
            load(path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.npz")
    with pytest.raises(IsADirectoryError):
        load(tmp_path)


class Bomb:
    """Unpickling this would create the file ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.marker,))


@pytest.mark.spec("IO-LOAD-CHECKS", "IO-FORMAT")
def test_pickled_content_is_refused_and_never_unpickled(tmp_path: Path) -> None:
    marker = tmp_path / "unpickled"
    bomb = np.empty(1, dtype=object)
    bomb[0] = Bomb(marker)
    path = tmp_path / "bad.npz"
    header, arrays = read_members(tampered(tmp_path, lambda h, a: None))
    write_members(path, header, {**arrays, "0.b": bomb})  # np.savez pickles object arrays
    with pytest.raises(ModelFileError, match=r"member '0\.b\.npy' is not a plain \.npy array"):
        load(path)
    obj_header = np.empty((), dtype=object)
    obj_header[()] = Bomb(marker)
    write_members(path, None, arrays, __refnn__=obj_header)
    with pytest.raises(ModelFileError, match=r"member '__refnn__\.npy' is not a plain \.npy"):
        load(path)
    path.write_bytes(pickle.dumps(Bomb(marker)))
    with pytest.raises(ModelFileError, match=r"is not a refnn model"):
        load(path)
    assert not marker.exists()
