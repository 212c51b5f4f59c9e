"""Saving and loading models: IO-FORMAT, IO-ATOMIC, IO-LOAD-CHECKS, IO-ROUNDTRIP."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st

import refnn
from refnn import LSTM, Dense, Layer, ModelFileError, ReLU, Sequential, Sigmoid, load, mlp, save
from refnn.conv import Conv2D
from refnn.flatten import Flatten
from refnn.init import InitName
from refnn.io import FORMAT_VERSION, HEADER_KEY, decode, encode, public_layer_classes
from refnn.pool import AvgPool2D, MaxPool2D
from refnn.types import DTypeLike
from tests.strategies import normal, seeds

Arrays = dict[str, np.ndarray[Any, Any]]

# ---------------------------------------------------------------------------------------------
# helpers


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


# ---------------------------------------------------------------------------------------------
# round trips


@st.composite
def architectures(draw: st.DrawFn) -> tuple[Sequential, np.ndarray[Any, Any]]:
    """A random stack of refnn's public layers and an input it accepts."""
    seed = draw(seeds)
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
            layers.append(refnn.Tanh(dtype=dtype))
        elif act == "softmax":
            layers.append(refnn.Softmax(dtype=dtype))
        elif act == "dropout":
            p_drop = draw(st.sampled_from([0.0, 0.25, 0.5]))
            layers.append(refnn.Dropout(p_drop, rng=rng, dtype=dtype))

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
            k: int | tuple[int, int] = kh if kh == kw else (kh, kw)
            stride: int | tuple[int, int] = sh if sh == sw else (sh, sw)
            layers.append(Conv2D(c, f, k, stride=stride, padding=pad, rng=rng, dtype=draw(dtypes)))
            c, h, w = f, (h + 2 * pad - kh) // sh + 1, (w + 2 * pad - kw) // sw + 1
            add_activation()
            if h >= 2 and w >= 2 and draw(st.booleans()):
                pools: list[type[MaxPool2D | AvgPool2D]] = [MaxPool2D, AvgPool2D]
                pool = draw(st.sampled_from(pools))
                layers.append(pool(2, stride=draw(st.sampled_from([None, 1])), dtype=draw(dtypes)))
                step = 2 if layers[-1].config()["stride"] == [2, 2] else 1
                h, w = (h - 2) // step + 1, (w - 2) // step + 1
        layers.append(Flatten(dtype=draw(dtypes)))
        layers.append(Dense(c * h * w, draw(st.integers(1, 4)), rng=rng, dtype=draw(dtypes)))
        X = normal(seed, c0, h0, h0, m)
    elif family == "dense":  # dense stack over X (n, m)
        n = n0 = draw(st.integers(1, 6))
        for _ in range(draw(st.integers(1, 4))):
            n_out = draw(st.integers(1, 6))
            init: InitName = draw(st.sampled_from(["he", "xavier"]))
            layers.append(Dense(n, n_out, rng=rng, init=init, dtype=draw(dtypes)))
            add_activation()
            n = n_out
        X = normal(seed, n0, m)
    else:  # recurrent stack over X (n, T, m)
        n = n0 = draw(st.integers(1, 4))
        T = draw(st.integers(1, 4))
        for _ in range(draw(st.integers(1, 2))):
            h = draw(st.integers(1, 4))
            fb = draw(st.sampled_from([0.0, 1.0, -0.5]))
            layers.append(LSTM(n, h, rng=rng, forget_bias=fb, dtype=draw(dtypes)))
            add_activation()
            n = h
        X = normal(seed, n0, T, m)
    # move every parameter away from its initial value, so loading cannot pass by re-drawing it
    for layer in layers:
        for value in layer.params.values():
            value += rng.standard_normal(value.shape).astype(value.dtype)
    return Sequential(layers), X


@pytest.mark.spec("IO-ROUNDTRIP", "IO-FORMAT")
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
    # loading with the model as the expected architecture works too, and a second save of the
    # loaded model writes the same bytes (the format is deterministic)
    same_model(model, load(path, expect=model))
    assert encode(loaded) == path.read_bytes()


@pytest.mark.spec("IO-FORMAT")
def test_the_file_is_a_plain_npz_with_a_json_header(tmp_path: Path) -> None:
    model = small_model()
    path = tmp_path / "m.npz"
    save(model, path)
    assert zipfile.is_zipfile(path)
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == sorted(
            [f"{HEADER_KEY}.npy", "0.W.npy", "0.b.npy", "2.W.npy", "2.b.npy"]
        )
        assert all(info.compress_type == zipfile.ZIP_STORED for info in zf.infolist())
    header, arrays = read_members(path)  # readable with allow_pickle=False
    assert header["format"] == "refnn.model"
    assert header["version"] == FORMAT_VERSION == 1
    assert header["refnn"] == refnn.__version__
    assert [rec["type"] for rec in header["layers"]] == ["Dense", "ReLU", "Dense", "Sigmoid"]
    assert header["layers"][0]["config"] == {
        "n_in": 3,
        "n_out": 4,
        "init": "he",
        "dtype": "float64",
    }
    assert header["layers"][1] == {"type": "ReLU", "config": {"dtype": "float64"}, "params": {}}
    meta = header["layers"][2]["params"]["W"]
    assert meta["shape"] == [2, 4] and meta["dtype"] == "float64"
    np.testing.assert_array_equal(arrays["2.W"], model.layers[2].params["W"])
    import hashlib

    assert meta["sha256"] == hashlib.sha256(arrays["2.W"].tobytes()).hexdigest()


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
    # paths as str work as well as Path; the name is used as given (no suffix is appended)
    save(model, str(tmp_path / "plain"))
    assert (tmp_path / "plain").exists()
    same_model(model, load(str(tmp_path / "plain")))


class Scaled(Layer[Any]):
    """An application layer (not exported by refnn): A = s X."""

    def __init__(self, s: float = 2.0, *, dtype: DTypeLike = np.float64) -> None:
        super().__init__(dtype=dtype)
        self.s = float(s)

    def forward(self, X: np.ndarray[Any, Any], *, training: bool = True) -> Any:
        return self.s * X

    def backward(self, dA: np.ndarray[Any, Any]) -> Any:
        return self.s * dA

    def config(self) -> dict[str, Any]:
        return {"s": self.s, **super().config()}


class Renamed(Scaled):
    """Its config() names an argument the constructor does not take."""

    def config(self) -> dict[str, Any]:
        return {"scale": self.s, "dtype": self.dtype.name}


class Drifting(Scaled):
    """Its config() is not what the constructor stores (a rebuilt layer reports another)."""

    def config(self) -> dict[str, Any]:
        return {"s": self.s + 1.0, "dtype": self.dtype.name}


class Unjsonable(Scaled):
    def config(self) -> dict[str, Any]:
        return {"s": np.float64(self.s), "shape": {1, 2}, "dtype": self.dtype.name}


@pytest.mark.spec("IO-LOAD-CHECKS", "IO-ROUNDTRIP")
def test_application_layers_only_when_the_caller_names_them(tmp_path: Path) -> None:
    model = Sequential([refnn.Dense(2, 2, rng=np.random.default_rng(0)), Scaled(3.0)])
    path = tmp_path / "m.npz"
    with pytest.raises(TypeError, match=r"Scaled is not one of refnn's public layer classes"):
        save(model, path)
    assert not path.exists()
    save(model, path, layers=[Scaled])
    with pytest.raises(ModelFileError, match=r"layer 1 has unknown type 'Scaled'"):
        load(path)
    loaded = load(path, layers=[Scaled])
    assert isinstance(loaded.layers[1], Scaled) and loaded.layers[1].s == 3.0
    with pytest.raises(ValueError, match=r"config\(\) .* does not rebuild it: .*'scale'"):
        save(Sequential([Renamed(5.0)]), path, layers=[Renamed])
    with pytest.raises(ValueError, match=r"config\(\) must return the constructor arguments"):
        save(Sequential([Drifting(5.0)]), path, layers=[Drifting])
    with pytest.raises(ValueError, match="is not plain JSON"):
        save(Sequential([Unjsonable()]), path, layers=[Unjsonable])
    impostor: type[Layer[Any]] = type("Dense", (refnn.Dense,), {})  # refnn's name, another class
    with pytest.raises(ValueError, match=r"same name as refnn\.dense\.Dense"):
        public_layer_classes([impostor])
    with pytest.raises(TypeError, match="Layer subclasses"):
        public_layer_classes([int])  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"\.Dense is not one of refnn's public"):
        save(Sequential([impostor(2, 2, rng=np.random.default_rng(0))]), path)  # type: ignore[call-arg, arg-type]
    with pytest.raises(TypeError, match="model must be a refnn Sequential, got list"):
        save([refnn.ReLU()], path)  # type: ignore[arg-type]
    # the failed saves above left the last good file in place
    loaded = load(path, layers=[Scaled])
    assert isinstance(loaded.layers[1], Scaled)


@pytest.mark.spec("IO-ROUNDTRIP")
def test_dropout_draws_its_masks_from_the_generator_passed_to_load(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    model = Sequential([Dense(3, 5, rng=rng), refnn.Dropout(0.5, rng=rng)])
    path = tmp_path / "m.npz"
    save(model, path)
    X = normal(0, 3, 7)
    masks = []
    for _ in range(2):
        loaded = load(path, rng=np.random.default_rng(42))
        loaded.forward(X, training=True)
        drop = loaded.layers[1]
        assert isinstance(drop, refnn.Dropout) and drop.keep_mask is not None
        masks.append(drop.keep_mask)
    np.testing.assert_array_equal(masks[0], masks[1])
    # the same as building the layers in order from that generator (Dense's throw-away weights
    # are drawn first)
    g = np.random.default_rng(42)
    Dense(3, 5, rng=g)
    expected = refnn.Dropout(0.5, rng=g)
    expected.forward(np.ones((5, 7)), training=True)
    np.testing.assert_array_equal(masks[0], expected.keep_mask)
    with pytest.raises(TypeError, match=r"rng must be a numpy\.random\.Generator"):
        load(path, rng=42)  # type: ignore[arg-type]


def test_every_exported_layer_class_is_loadable() -> None:
    names = set(public_layer_classes())
    assert {"Dense", "ReLU", "Sigmoid", "Tanh", "Softmax", "Dropout", "LSTM"} <= names
    assert {"Conv2D", "MaxPool2D", "AvgPool2D", "Flatten"} <= names
    assert "Layer" not in names  # abstract classes are not rebuildable


# ---------------------------------------------------------------------------------------------
# atomic writes


@pytest.mark.spec("IO-ATOMIC")
def test_a_failed_write_leaves_the_old_file_and_no_temporary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "m.npz"
    save(small_model(0), path)
    os.chmod(path, 0o600)
    good = path.read_bytes()

    def broken_replace(src: Any, dst: Any) -> None:
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="simulated"):
        save(small_model(1), path)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]

    def broken_fsync(fd: int) -> None:
        raise OSError("I/O error (simulated)")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    with pytest.raises(OSError, match="simulated"):
        save(small_model(1), path)
    monkeypatch.undo()
    assert path.read_bytes() == good
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]
    # a successful save replaces the file and keeps its permission bits
    save(small_model(1), path)
    same_model(load(path), small_model(1))
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]


_WRITER = """
import sys
import numpy as np
from refnn import Dense, Sequential, save
path = sys.argv[1]
models = [Sequential([Dense(400, 400, rng=np.random.default_rng(s))]) for s in (1, 2)]
save(models[0], path)
print("ready", flush=True)
i = 0
while True:
    i += 1
    save(models[i % 2], path)
"""


@pytest.mark.spec("IO-ATOMIC")
def test_killing_a_writer_mid_save_never_leaves_a_broken_file(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    expected = [
        Sequential([Dense(400, 400, rng=np.random.default_rng(s))]).layers[0].params["W"]
        for s in (1, 2)
    ]
    root = Path(__file__).resolve().parents[1]
    for delay in (0.05, 0.13, 0.31):
        proc = subprocess.Popen(
            [sys.executable, "-c", _WRITER, str(path)],
            stdout=subprocess.PIPE,
            cwd=root,
            text=True,
        )
        try:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
            try:
                proc.wait(timeout=delay)
            except subprocess.TimeoutExpired:
                pass
        finally:
            proc.kill()  # SIGKILL: no cleanup handler runs
            proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        W = load(path).layers[0].params["W"]
        assert any(np.array_equal(W, e) for e in expected)
    # leftovers of killed writers are hidden temporaries, never the target
    assert all(p.name.startswith(".m.npz.") for p in tmp_path.iterdir() if p != path)


# ---------------------------------------------------------------------------------------------
# corrupt files


@pytest.mark.spec("IO-LOAD-CHECKS")
def test_every_truncation_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    save(small_model(), path)
    data = path.read_bytes()
    for n in range(len(data)):
        with pytest.raises(ModelFileError, match=r"m\.npz") as info:
            decode(data[:n], source=str(path))
        assert isinstance(info.value, ValueError)
    (tmp_path / "t.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match=r"t\.npz: is not a readable \.npz archive"):
        load(tmp_path / "t.npz")


@pytest.mark.spec("IO-LOAD-CHECKS")
def test_every_flipped_byte_is_refused_or_harmless(tmp_path: Path) -> None:
    """A flipped bit anywhere either raises ModelFileError or changes nothing the model holds.

    (Some zip bytes carry no meaning for the model: timestamps, "version made by".)
    """
    model = small_model()
    data = encode(model)
    refused = 0
    for i in range(len(data)):
        for bit in (0x01, 0x80):
            flipped = bytearray(data)
            flipped[i] ^= bit
            try:
                loaded = decode(bytes(flipped))
            except ModelFileError:
                refused += 1
            else:
                same_model(model, loaded)
    assert refused > 0.8 * 2 * len(data)


@pytest.mark.spec("IO-LOAD-CHECKS")
def test_missing_and_unlisted_arrays_are_refused(tmp_path: Path) -> None:
    bad = tampered(tmp_path, lambda h, a: a.pop("2.b"))
    with pytest.raises(ModelFileError, match=r"missing array\(s\) \['2.b'\]"):
        load(bad)

    def add(h: dict[str, Any], a: Arrays) -> None:
        a["9.W"] = np.zeros(3)

    with pytest.raises(ModelFileError, match=r"holds array\(s\) \['9.W'\] that its header"):
        load(tampered(tmp_path, add))


@pytest.mark.spec("IO-LOAD-CHECKS")
def test_wrong_shapes_and_dtypes_are_refused(tmp_path: Path) -> None:
    def wrong_array(h: dict[str, Any], a: Arrays) -> None:
        a["0.W"] = np.zeros((4, 5))

    with pytest.raises(ModelFileError, match=r"array '0.W' is float64\[4, 5\], but Dense"):
        load(tampered(tmp_path, wrong_array))

    def wrong_header_and_array(h: dict[str, Any], a: Arrays) -> None:
        a["0.W"] = np.zeros((4, 5))
        h["layers"][0]["params"]["W"]["shape"] = [4, 5]

    with pytest.raises(
        ModelFileError, match=r"'0.W': Dense\(n_in=3, n_out=4.*\) expects float64\[4, 3\]"
    ):
        load(tampered(tmp_path, wrong_header_and_array))

    def wrong_dtype(h: dict[str, Any], a: Arrays) -> None:
        a["0.b"] = a["0.b"].astype(np.float32)

    with pytest.raises(ModelFileError, match=r"'0.b' is float32\[4, 1\], but Dense"):
        load(tampered(tmp_path, wrong_dtype))

    def integer_array(h: dict[str, Any], a: Arrays) -> None:
        a["0.b"] = np.zeros((4, 1), dtype=np.int64)

    with pytest.raises(ModelFileError, match=r"'0.b' is int64\[4, 1\]"):
        load(tampered(tmp_path, integer_array))

    def huge_claim(h: dict[str, Any], a: Arrays) -> None:
        a["0.W"] = np.zeros((400, 300))  # bigger than the header allows: refused before reading

    with pytest.raises(ModelFileError, match=r"array '0.W' takes \d+ bytes, more than"):
        load(tampered(tmp_path, huge_claim))


@pytest.mark.spec("IO-LOAD-CHECKS")
def test_changed_values_are_caught_by_the_digest(tmp_path: Path) -> None:
    def edit(h: dict[str, Any], a: Arrays) -> None:
        a["2.W"] = a["2.W"].copy()
        a["2.W"][0, 0] = np.nextafter(a["2.W"][0, 0], np.inf)  # one ulp

    with pytest.raises(ModelFileError, match=r"'2.W' does not match the SHA-256 digest"):
        load(tampered(tmp_path, edit))


@pytest.mark.spec("IO-LOAD-CHECKS")
def test_another_architecture_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    save(small_model(), path)
    rng = np.random.default_rng(0)
    with pytest.raises(ModelFileError, match=r"another architecture: 4 layers .* expected 2"):
        load(path, expect=mlp([3, 2], rng=rng))
    with pytest.raises(ModelFileError, match=r"layer 0 is Dense\(.*'n_out': 4.*expected Dense"):
        load(path, expect=mlp([3, 5, 2], rng=rng))
    with pytest.raises(ModelFileError, match=r"layer 3 is Sigmoid.*expected ReLU"):
        load(path, expect=Sequential([Dense(3, 4, rng=rng), ReLU(), Dense(4, 2, rng=rng), ReLU()]))
    with pytest.raises(ModelFileError, match=r"'dtype': 'float64'.*'dtype': 'float32'"):
        load(path, expect=mlp([3, 4, 2], rng=rng, dtype=np.float32))


@pytest.mark.spec("IO-LOAD-CHECKS")
def test_unknown_layer_types_and_refused_configs(tmp_path: Path) -> None:
    def unknown(h: dict[str, Any], a: Arrays) -> None:
        h["layers"][1]["type"] = "os.system"

    with pytest.raises(ModelFileError, match=r"layer 1 has unknown type 'os.system'; known"):
        load(tampered(tmp_path, unknown))

    def abstract(h: dict[str, Any], a: Arrays) -> None:
        h["layers"][1]["type"] = "Layer"

    with pytest.raises(ModelFileError, match=r"unknown type 'Layer'"):
        load(tampered(tmp_path, abstract))

    def bad_value(h: dict[str, Any], a: Arrays) -> None:
        h["layers"][0]["config"]["n_in"] = -3

    with pytest.raises(ModelFileError, match=r"layer 0 \(Dense\) config .* refused: n_in must"):
        load(tampered(tmp_path, bad_value))

    def bad_kwarg(h: dict[str, Any], a: Arrays) -> None:
        h["layers"][1]["config"]["alpha"] = 0.1

    with pytest.raises(ModelFileError, match=r"layer 1 \(ReLU\) config .* refused: .*alpha"):
        load(tampered(tmp_path, bad_kwarg))

    def bad_dtype(h: dict[str, Any], a: Arrays) -> None:
        h["layers"][1]["config"]["dtype"] = "object"

    with pytest.raises(ModelFileError, match=r"refused: dtype must be float64 or float32"):
        load(tampered(tmp_path, bad_dtype))

    def with_rng(h: dict[str, Any], a: Arrays) -> None:
        h["layers"][0]["config"]["rng"] = 5

    with pytest.raises(ModelFileError, match=r"must not contain 'rng'"):
        load(tampered(tmp_path, with_rng))

    def param_names(h: dict[str, Any], a: Arrays) -> None:
        h["layers"][1]["params"] = {"W": {"shape": [1], "dtype": "float64", "sha256": "0"}}
        a["1.W"] = np.zeros(1)

    with pytest.raises(ModelFileError, match=r"layer 1 \(ReLU\) has parameters \[\], the file"):
        load(tampered(tmp_path, param_names))


@pytest.mark.spec("IO-LOAD-CHECKS")
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda h: h.update(version=2), r"format version 2 is not supported: .* version 1 only"),
        (lambda h: h.update(version="1"), r"format version '1' is not supported"),
        (lambda h: h.update(version=True), r"format version True is not supported"),
        (lambda h: h.pop("version"), r"format version None is not supported"),
        (lambda h: h.update(format="keras"), r"header format must be 'refnn.model', got 'keras'"),
        (lambda h: h.update(layers=[]), r"'layers' must be a non-empty list"),
        (lambda h: h.update(layers={"0": 1}), r"'layers' must be a non-empty list"),
        (lambda h: h["layers"][0].pop("config"), r"header entry of layer 0 is malformed"),
        (lambda h: h["layers"][2].update(type=7), r"header entry of layer 2 is malformed"),
        (
            lambda h: h["layers"][0]["params"]["W"].update(shape=[4, -3]),
            r"entry of layer 0 is malformed",
        ),
        (
            lambda h: h["layers"][0]["params"]["W"].update(dtype="float16"),
            r"entry of layer 0 is malformed",
        ),
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
            r"header is not valid JSON",
        ),
        "list_header.npz": (
            lambda p: write_members(p, [1, 2], arrays),
            r"header must be a JSON object, got list",
        ),
        "numeric_header.npz": (
            lambda p: write_members(p, None, arrays, __refnn__=np.zeros(3)),
            r"header must be a 0-d unicode array, got float64\(3,\)",
        ),
        "array.npy": (
            lambda p: np.save(p, np.zeros(3)),
            r"is a single \.npy array, not a refnn model",
        ),
        "empty.npz": (lambda p: p.write_bytes(b""), r"is not a readable \.npz archive"),
        "text.npz": (
            lambda p: p.write_text("W = [1, 2]\n"),
            r"is not a refnn model \(\.npz archive\): it begins with b'W = \[1, 2\]",
        ),
        "config.json": (lambda p: p.write_text('{"a": 1}'), r"is not a refnn model"),
        "hello.npz": (lambda p: p.write_bytes(b"hello"), r"is not a refnn model"),
    }
    for name, (write, message) in cases.items():
        path = tmp_path / name
        write(path)
        with pytest.raises(ModelFileError, match=message):
            load(path)
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "absent.npz")


@pytest.mark.spec("IO-LOAD-CHECKS")
def test_pickled_content_is_refused_and_never_unpickled(tmp_path: Path) -> None:
    import pickle

    marker = tmp_path / "unpickled"

    class Bomb:
        """Unpickling this would create ``marker``."""

        def __reduce__(self) -> tuple[Any, ...]:
            return (Path.touch, (marker,))

    bomb = np.empty(1, dtype=object)
    bomb[0] = Bomb()

    # an object array in place of a parameter
    path = tmp_path / "bad.npz"
    header, arrays = read_members(tampered(tmp_path, lambda h, a: None))
    arrays["0.b"] = bomb
    write_members(path, header, arrays)  # np.savez pickles object arrays by default
    with pytest.raises(ModelFileError, match=r"array '0.b' is an object array, which needs pickle"):
        load(path)
    # an object header
    obj_header = np.empty((), dtype=object)
    obj_header[()] = Bomb()
    write_members(path, None, arrays, __refnn__=obj_header)
    with pytest.raises(ModelFileError, match=r"'__refnn__' is an object array"):
        load(path)
    # a bare pickle in place of the whole file
    path.write_bytes(pickle.dumps(Bomb()))
    with pytest.raises(ModelFileError, match=r"holds pickled data, which refnn never reads"):
        load(path)
    assert not marker.exists()
    with pytest.raises(ModelFileError):
        decode(io.BytesIO(pickle.dumps({"W": np.zeros(2)})).getvalue())


@pytest.mark.spec("IO-ATOMIC")
def test_saving_into_a_missing_directory_names_the_users_path(tmp_path: Path) -> None:
    target = tmp_path / "nope" / "model.npz"
    model = mlp([2, 1], rng=np.random.default_rng(0))
    with pytest.raises(FileNotFoundError, match=r"cannot save to .*nope/model\.npz: directory"):
        save(model, target)
    assert not (tmp_path / "nope").exists()
