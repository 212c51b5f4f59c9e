"""Model files that load must refuse, and models save must refuse (ISSUE 24, items 5-10):
IO-SAVE-CHECKS, IO-REGULAR, IO-LIMITS, IO-HEADER, IO-MESSAGES, IO-CLEANUP."""

from __future__ import annotations

import fcntl
import io
import json
import os
import re
import socket
import struct
import subprocess
import sys
import threading
import time
import tracemalloc
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import refnn.io
from refnn import LSTM, Conv2D, Dense, Layer, ModelFileError, ReLU, Sequential, Sigmoid, load, save
from refnn.io import HEADER_KEY, MAX_HEADER_OBJECTS, MAX_LAYERS, MAX_MEMBERS

pytestmark = pytest.mark.skipif(os.name != "posix", reason="FIFOs, devices and flock are POSIX")
ROOT = Path(__file__).resolve().parents[1]
TMP_SUFFIX = ".refnn-partial"


def model_of(kind: str, n: int, seed: int = 0) -> Sequential:
    """A model of refnn's layers of size ``n`` whose first layer is ``kind``."""
    rng = np.random.default_rng(seed)
    first: Layer[Any]
    if kind == "Dense":
        first = Dense(n, n + 1, rng=rng)
    elif kind == "Conv2D":
        first = Conv2D(n, n + 1, (2, 3), rng=rng)
    else:
        first = LSTM(n, n + 1, rng=rng)
    return Sequential([first, ReLU(), Dense(n + 1, 2, rng=rng), Sigmoid()])


def members_of(path: Path) -> dict[str, bytes]:
    """Every member of a saved file, by name, as stored."""
    with zipfile.ZipFile(path) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def raw_zip(members: list[tuple[str, bytes]]) -> bytes:
    """An uncompressed zip of ``members``, written directly (fast at 100,000 members); a count
    above 65535 is written as 65535, as zip64 writers do in this record."""
    local, central, offset = [], [], 0
    for name, data in members:
        raw, crc, n = name.encode(), zlib.crc32(data), len(data)
        head = struct.pack("<4s5H3L2H", b"PK\x03\x04", 20, 0, 0, 0, 0, crc, n, n, len(raw), 0)
        fields = (20, 20, 0, 0, 0, 0, crc, n, n, len(raw), 0, 0, 0, 0, 0, offset)
        central.append(struct.pack("<4s6H3L5H2L", b"PK\x01\x02", *fields) + raw)
        local.append(head + raw + data)
        offset += len(local[-1])
    directory = b"".join(central)
    count = min(len(members), 0xFFFF)
    end = struct.pack("<4s4H2LH", b"PK\x05\x06", 0, 0, count, count, len(directory), offset, 0)
    return b"".join(local) + directory + end


def npy_bytes(a: np.ndarray[Any, Any]) -> bytes:
    out = io.BytesIO()
    np.save(out, a)
    return out.getvalue()


def header_text(path: Path) -> str:
    with np.load(path, allow_pickle=False) as z:
        return str(z[HEADER_KEY][()])


def with_header(path: Path, text: str, out: Path) -> Path:
    """The file at ``path`` with its header replaced by the JSON text ``text``."""
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files if k != HEADER_KEY}
    members: dict[str, Any] = {**arrays, HEADER_KEY: np.array(text)}
    np.savez(out, **members)
    return out


def refusal(path: Path, **kwargs: Any) -> str:
    with pytest.raises(ModelFileError) as info:
        load(path, **kwargs)
    return str(info.value)


# ---------------------------------------------------------------------------------------------
# item 5: save checks the model against what load will require (IO-SAVE-CHECKS)


def transposed(a: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    return np.ascontiguousarray(np.swapaxes(a, 0, 1))


CORRUPTIONS: dict[str, tuple[Callable[[dict[str, Any]], object], str]] = {
    "W transposed": (lambda p: p.update(W=transposed(p["W"])), r"implies parameters .*'W'"),
    "W one row more": (
        lambda p: p.update(W=np.concatenate([p["W"], p["W"][:1]])),
        r"implies parameters .*'W'",
    ),
    "W of 5 x 7": (lambda p: p.update(W=np.zeros((5, 7))), r"holds \{'W': '<f8\[5, 7\]'"),
    "b float32": (lambda p: p.update(b=p["b"].astype(np.float32)), r"'b': '<f4\["),
    "b big-endian": (lambda p: p.update(b=p["b"].astype(">f8")), r"'b': '>f8\["),
    "b int64": (lambda p: p.update(b=p["b"].astype(np.int64)), r"'b': '<i8\["),
    "b missing": (lambda p: p.pop("b"), r"it holds \{'W': '<f8\[[0-9, ]*\]'\}; load would"),
    "an extra array": (lambda p: p.update(c=np.zeros(3)), r"'c': '<f8\[3\]'"),
    "a list for W": (lambda p: p.update(W=p["W"].tolist()), r"numpy arrays, got 'W': list"),
}


@pytest.mark.spec("IO-SAVE-CHECKS")
@pytest.mark.parametrize("kind", ["Dense", "Conv2D", "LSTM"])
@pytest.mark.parametrize("n", [1, 3, 8])
@pytest.mark.parametrize("corruption", list(CORRUPTIONS))
def test_save_refuses_what_load_would_refuse_and_keeps_the_good_file(
    kind: str, n: int, corruption: str, tmp_path: Path
) -> None:
    """Before: the model saved without complaint over the good file, which load then refused."""
    path = tmp_path / "m.npz"
    save(model_of(kind, n), path)
    good = path.read_bytes()
    model = model_of(kind, n, seed=1)
    change, message = CORRUPTIONS[corruption]
    change(model.layers[0].params)
    error = TypeError if corruption == "a list for W" else ValueError
    with pytest.raises(error, match=rf"layer 0 \({kind}\): .*{message}"):
        save(model, path)
    assert path.read_bytes() == good  # nothing replaced, no temporary file left
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz"]
    load(path)


@pytest.mark.spec("IO-SAVE-CHECKS")
@pytest.mark.parametrize("where", [1, 3])
def test_a_parameterless_layer_given_a_parameter_is_not_saved(where: int, tmp_path: Path) -> None:
    model = model_of("Dense", 3)
    model.layers[where].params["W"] = np.zeros((2, 2))
    kind = type(model.layers[where]).__name__
    with pytest.raises(ValueError, match=rf"layer {where} \({kind}\): .*implies parameters \{{\}}"):
        save(model, tmp_path / "m.npz")
    assert list(tmp_path.iterdir()) == []


class Gain(Layer[Any]):
    """An application layer with one parameter, g (n x 1), whose shape only its constructor
    knows: A = g X."""

    def __init__(self, n: int, *, dtype: Any = np.float64) -> None:
        super().__init__(dtype=dtype)
        if not isinstance(n, int) or n < 1:
            raise ValueError(f"n must be a positive int, got {n!r}")
        self.n = n
        self.params["g"] = np.ones((n, 1), dtype=self.dtype)

    def _forward(self, X: Any, training: bool, **inputs: Any) -> tuple[Any, None]:
        return self.params["g"] * X, None

    def _backward(self, dY: Any, cache: None) -> tuple[Any, dict[str, Any], dict[str, Any]]:
        return self.params["g"] * dY, {"g": np.zeros_like(self.params["g"])}, {}

    def config(self) -> dict[str, Any]:
        return {"n": self.n, **super().config()}


@pytest.mark.spec("IO-SAVE-CHECKS")
@pytest.mark.parametrize("n", [1, 4, 50])
def test_an_application_layer_is_checked_against_what_its_constructor_builds(
    n: int, tmp_path: Path
) -> None:
    path = tmp_path / "m.npz"
    layer = Gain(n)
    layer.params["g"][...] = 3.0
    save(Sequential([layer]), path, layers=[Gain])
    good = path.read_bytes()
    loaded = load(path, layers=[Gain]).layers[0]
    assert isinstance(loaded, Gain) and (loaded.params["g"] == 3.0).all()
    layer.params["g"] = np.ones((n + 1, 1))
    with pytest.raises(
        ValueError, match=rf"\(Gain\): its config implies .*\[{n}, 1\].*\[{n + 1}, 1"
    ):
        save(Sequential([layer]), path, layers=[Gain])
    layer.params["g"] = np.ones((n, 1))
    layer.n = -n  # config() now gives what the constructor refuses
    with pytest.raises(ValueError, match=rf"\(Gain\): load could not rebuild it: .*got {-n}"):
        save(Sequential([layer]), path, layers=[Gain])
    assert path.read_bytes() == good


@pytest.mark.spec("IO-SAVE-CHECKS", "IO-LIMITS")
def test_save_refuses_more_layers_than_load_reads(tmp_path: Path) -> None:
    path = tmp_path / "m.npz"
    save(Sequential([ReLU() for _ in range(MAX_LAYERS)]), path)  # the bound itself is fine
    assert len(load(path).layers) == MAX_LAYERS
    good = path.read_bytes()
    too_many = Sequential([ReLU() for _ in range(MAX_LAYERS + 1)])
    with pytest.raises(ValueError, match=r"model has 10001 layers; load reads at most 10000"):
        save(too_many, path)
    assert path.read_bytes() == good


# ---------------------------------------------------------------------------------------------
# item 6: only regular files are read, and load never waits (IO-REGULAR)


def load_in_thread(path: Path, timeout: float = 5.0) -> BaseException | None:
    """What load(path) raised, run in a thread; fails if it has not returned within timeout."""
    outcome: list[BaseException | None] = []

    def run() -> None:
        try:
            load(path)
            outcome.append(None)
        except BaseException as err:
            outcome.append(err)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():  # blocked in open(): give it a writer that closes at once, to end it
        for target in (path, path.resolve()):
            try:
                os.close(os.open(target, os.O_WRONLY | os.O_NONBLOCK))
            except OSError:
                pass
        thread.join(timeout)
        pytest.fail(f"load({path.name!r}) was still waiting after {timeout} s")
    return outcome[0]


def make_fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def make_socket(path: Path) -> Path:
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.close()  # the socket file stays
    return path


def link_to(target: Path, path: Path, hops: int) -> Path:
    for i in range(hops):
        link = path.with_name(f"{path.name}.{i}")
        link.symlink_to(target)
        target = link
    return target


@pytest.mark.spec("IO-REGULAR")
@pytest.mark.parametrize(
    ("make", "what"),
    [
        (lambda p: make_fifo(p), "a FIFO"),
        (lambda p: link_to(make_fifo(p), p, 1), "a FIFO"),
        (lambda p: link_to(make_fifo(p), p, 3), "a FIFO"),
        (lambda p: Path("/dev/null"), "a character device"),
        (lambda p: link_to(Path("/dev/zero"), p, 2), "a character device"),
        (lambda p: make_socket(p), "a socket"),
    ],
)
def test_what_is_not_a_regular_file_is_refused_without_waiting(
    make: Callable[[Path], Path], what: str, tmp_path: Path
) -> None:
    """Before: load on a FIFO waited in open() for a writer that never came."""
    path = make(tmp_path / "m.npz")
    err = load_in_thread(path)
    assert isinstance(err, ModelFileError), err
    assert f"is {what}" in str(err) and "not a regular file" in str(err)


@pytest.mark.spec("IO-REGULAR")
def test_a_regular_file_through_links_and_a_directory(tmp_path: Path) -> None:
    model = model_of("Dense", 2)
    save(model, tmp_path / "m.npz")
    assert load_in_thread(link_to(tmp_path / "m.npz", tmp_path / "l", 3)) is None
    assert isinstance(load_in_thread(tmp_path), IsADirectoryError)


# ---------------------------------------------------------------------------------------------
# item 7: what cannot be a model is refused from the directory alone (IO-LIMITS)


def count_member_reads(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the members load reads (through refnn.io._npy), in order."""
    reads: list[str] = []
    real = refnn.io._npy

    def counted(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> Any:
        reads.append(info.filename)
        return real(zf, info)

    monkeypatch.setattr(refnn.io, "_npy", counted)
    return reads


@pytest.fixture(scope="module")
def good_members(tmp_path_factory: pytest.TempPathFactory) -> dict[str, bytes]:
    path = tmp_path_factory.mktemp("good") / "m.npz"
    save(model_of("Dense", 3), path)
    return members_of(path)


@pytest.mark.spec("IO-LIMITS")
@pytest.mark.parametrize("extra", [MAX_MEMBERS, 65_535, 100_000])
def test_more_members_than_a_model_has_are_refused_before_the_directory_is_read(
    extra: int, good_members: dict[str, bytes], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a 24.6 MB file of 100,000 empty arrays took 7.4 s and 127 MB (RSS) to refuse."""
    empty = npy_bytes(np.zeros(0))
    path = tmp_path / "many.npz"
    path.write_bytes(
        raw_zip([*good_members.items(), *((f"{i}.x.npy", empty) for i in range(extra))])
    )
    reads = count_member_reads(monkeypatch)
    tracemalloc.start()
    try:
        message = refusal(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    shown = "65535 or more" if extra + 5 > 0xFFFF else str(extra + 5)
    assert f"its zip directory lists {shown} members; a model has at most 40001" in message
    assert reads == [] and peak < 2**20, (reads[:3], peak)


@pytest.mark.spec("IO-LIMITS")
@pytest.mark.parametrize("extra", [1, 100, 5_000])
@pytest.mark.parametrize("names", ["beyond the header", "beyond MAX_LAYERS", "no layer index"])
def test_members_of_no_layer_are_refused_before_any_array_is_read(
    extra: int,
    names: str,
    good_members: dict[str, bytes],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Before: every member was read (and allocated) before any was found to be of no layer."""

    def name(i: int) -> str:
        if names == "beyond the header":
            return f"{4 + i % (MAX_LAYERS - 4)}.x{i}"
        if names == "beyond MAX_LAYERS":
            return f"{MAX_LAYERS + i}.W"
        return f"0{i}.W" if i % 2 else f"x{i}"

    stray = [(name(i) + ".npy", npy_bytes(np.zeros(2))) for i in range(extra)]
    path = tmp_path / "stray.npz"
    path.write_bytes(raw_zip([*good_members.items(), *stray]))
    reads = count_member_reads(monkeypatch)
    message = refusal(path)
    assert "of no layer" in message and repr(min(name(i) for i in range(extra))) in message
    # the directory alone, or the header alone, decides
    assert reads == ([] if names != "beyond the header" else [f"{HEADER_KEY}.npy"])
    assert len(message) < len(str(path)) + 2 * refnn.io.VALUE_LIMIT


@pytest.mark.spec("IO-LIMITS")
@pytest.mark.parametrize("n", [MAX_LAYERS + 1, 3 * MAX_LAYERS, 100_000])
def test_a_header_listing_more_layers_than_load_reads_is_refused(
    n: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Before: a valid header listing 100,000 layers loaded, in 4.9 s and 160 MB (RSS)."""
    header = {
        "format": "refnn.model",
        "version": 2,
        "layers": [{"type": "ReLU", "config": {"dtype": "float64"}}] * n,
    }
    path = tmp_path / "deep.npz"
    members: dict[str, Any] = {HEADER_KEY: np.array(json.dumps(header))}
    np.savez(path, **members)
    built: list[int] = []
    real = refnn.io._build

    def counted(i: int, *args: Any) -> Any:
        built.append(i)
        return real(i, *args)

    monkeypatch.setattr(refnn.io, "_build", counted)
    message = refusal(path)
    if 1 + 2 * n <= MAX_HEADER_OBJECTS:  # a record and its config: 2 objects per layer
        assert f"its header lists {n} layers; load reads {MAX_LAYERS}" in message
    else:  # found while parsing, before the whole header is
        assert f"its header holds more than {MAX_HEADER_OBJECTS} JSON objects" in message
    assert built == []  # refused before any layer is built


class Nested(Gain):
    """Its config holds ``k`` JSON objects besides itself."""

    def __init__(self, n: int, nest: list[dict[str, int]] | None = None, **kw: Any) -> None:
        super().__init__(n, **kw)
        self.nest = list(nest or [])

    def config(self) -> dict[str, Any]:
        return {**super().config(), "nest": self.nest}


@pytest.mark.spec("IO-LIMITS", "IO-SAVE-CHECKS")
@pytest.mark.parametrize("layers", [1, 3, 200])
def test_a_header_of_too_many_json_objects_is_refused_by_load_and_by_save(
    layers: int, tmp_path: Path
) -> None:
    """Objects are counted while parsing: a few layers with big configs are bounded too."""
    path = tmp_path / "m.npz"
    k = (MAX_HEADER_OBJECTS - 1) // layers - 2  # the most each layer's config may nest
    fits = Sequential([Nested(1, [{"a": 0}] * k) for _ in range(layers)])
    save(fits, path, layers=[Nested])
    assert len(load(path, layers=[Nested]).layers) == layers
    good = path.read_bytes()
    over = Sequential([Nested(1, [{"a": 0}] * (k + 1)) for _ in range(layers)])
    with pytest.raises(ValueError, match=r"load would refuse the model's header: .* 40001 JSON"):
        save(over, path, layers=[Nested])
    assert path.read_bytes() == good
    header = json.loads(header_text(path))
    extra = MAX_HEADER_OBJECTS - (1 + layers * (k + 2)) + 1  # to one object beyond the bound
    header["layers"][-1]["config"]["nest"] += [{"a": 0}] * extra
    bad = with_header(path, json.dumps(header), tmp_path / "bad.npz")
    assert "its header holds more than 40001 JSON objects" in refusal(bad, layers=[Nested])


@pytest.mark.spec("IO-LIMITS")
def test_the_member_count_is_read_from_the_end_record(
    good_members: dict[str, bytes], tmp_path: Path
) -> None:
    """A count in the end record above the bound is refused even if the directory is short."""
    data = bytearray(raw_zip(list(good_members.items())))
    for count in (MAX_MEMBERS + 1, 0xFFFF):
        data[-14:-10] = struct.pack("<2H", count, count)
        path = tmp_path / "lying.npz"
        path.write_bytes(bytes(data))
        assert f"lists {count}" in refusal(path)
    data[-14:-10] = struct.pack("<2H", MAX_MEMBERS, MAX_MEMBERS)  # within the bound: zipfile reads
    path.write_bytes(bytes(data))
    assert isinstance(load(path), Sequential)


# ---------------------------------------------------------------------------------------------
# item 8: the header is one unambiguous object (IO-HEADER)


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    save(model_of("Dense", 3), tmp_path / "m.npz")
    return tmp_path / "m.npz"


@pytest.mark.spec("IO-HEADER")
@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ('"format": "refnn.model"', '"format": "refnn.model", "format": "x"', "'format'"),
        ('"format": "refnn.model"', '"format": "x", "format": "refnn.model"', "'format'"),
        ('"version": 2', '"version": 2, "version": 2', "'version'"),
        ('"layers": [', '"layers": [], "layers": [', "'layers'"),
        ('"n_out": 4', '"n_out": 2, "n_out": 4', "'n_out'"),
        ('"n_out": 4', '"n_out": 4, "n_out": 4', "'n_out'"),
        ('{"type": "ReLU"', '{"type": "Tanh", "type": "ReLU"', "'type'"),
        ('"init": "he"', '"init": {"a": 1, "a": 2}', "'a'"),
    ],
)
def test_a_repeated_key_is_refused_by_name(saved: Path, old: str, new: str, message: str) -> None:
    """Before: the last of the repeated keys won ("n_out": 2, "n_out": 5 loaded n_out=5)."""
    text = header_text(saved)
    assert text.count(old) >= 1
    bad = with_header(saved, text.replace(old, new, 1), saved.with_name("bad.npz"))
    assert f"its header repeats the key {message} in an object" in refusal(bad)


@pytest.mark.spec("IO-HEADER")
@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda h: h.update(version=2.0), r"has format version 2\.0; this refnn reads 1 and 2"),
        (lambda h: h.update(version=1.0), r"has format version 1\.0"),
        (lambda h: h.update(extra=1), r"header has unknown key\(s\) \['extra'\]; a version 2"),
        (lambda h: h.update(refnn="0.1.0"), r"unknown key\(s\) \['refnn'\]; a version 2 header"),
        (lambda h: h.update(b=0, a=0), r"unknown key\(s\) \['a', 'b'\]"),
        (lambda h: h["layers"][2].update(note=""), r"layer 2 has unknown key\(s\) \['note'\]"),
        (lambda h: h["layers"][0].update(params={}), r"layer 0 has unknown key\(s\) \['params'"),
        (
            lambda h: h.update(version=1, layers=[{**h["layers"][0], "x": 0}, *h["layers"][1:]]),
            r"layer 0 has unknown key\(s\) \['x'\]; a version 1 layer holds",
        ),
    ],
)
def test_unknown_keys_and_a_version_that_is_not_an_int_are_refused(
    saved: Path, edit: Callable[[dict[str, Any]], object], message: str
) -> None:
    """Before: each of these loaded."""
    header = json.loads(header_text(saved))
    edit(header)
    bad = with_header(saved, json.dumps(header), saved.with_name("bad.npz"))
    assert_matches(message, refusal(bad))


def assert_matches(pattern: str, text: str) -> None:
    assert re.search(pattern, text), (pattern, text)


# ---------------------------------------------------------------------------------------------
# item 9: messages are bounded and name what is unsupported (IO-MESSAGES)

LONG_SIZES = [10, 1000, 1_000_000]


def long_header_cases(n: int) -> dict[str, Callable[[dict[str, Any]], object]]:
    text = "k" * n
    return {
        "config key": lambda h: h["layers"][0]["config"].update({text: 1}),
        "config value": lambda h: h["layers"][0]["config"].update(init=text),
        "layer type": lambda h: h["layers"][1].update(type=text),
        "format": lambda h: h.update(format=text),
        "version": lambda h: h.update(version=text),
        "header key": lambda h: h.update({text: 1}),
        "layer key": lambda h: h["layers"][0].update({text: 1}),
        "layers": lambda h: h.update(layers=text),
    }


@pytest.mark.spec("IO-MESSAGES")
@pytest.mark.parametrize("n", LONG_SIZES)
@pytest.mark.parametrize("case", list(long_header_cases(1)))
def test_messages_show_a_bounded_part_of_long_header_text(saved: Path, n: int, case: str) -> None:
    """Before: a 1,000,000-character config key gave a 2,000,000-character message."""
    header = json.loads(header_text(saved))
    long_header_cases(n)[case](header)
    bad = with_header(saved, json.dumps(header), saved.with_name("bad.npz"))
    message = refusal(bad)
    body = message.removeprefix(f"{bad}: ")
    assert len(body) <= refnn.io.MESSAGE_LIMIT + 40, len(body)
    assert "k" * min(n, 50) in body  # it still names what it refuses
    if n > refnn.io.MESSAGE_LIMIT:
        assert "characters)" in body


@pytest.mark.spec("IO-MESSAGES")
@pytest.mark.parametrize("n", [10, 1000, 60_000])
def test_messages_show_a_bounded_part_of_long_member_names(
    n: int, good_members: dict[str, bytes], tmp_path: Path
) -> None:
    members = dict(good_members)
    for name, shown in ((f"0.{'W' * n}.npy", "W" * 10), (f"{'x' * n}.txt", "x" * 10)):
        path = tmp_path / "names.npz"
        path.write_bytes(raw_zip([*members.items(), (name, npy_bytes(np.zeros(1)))]))
        body = refusal(path).removeprefix(f"{path}: ")
        assert len(body) <= refnn.io.MESSAGE_LIMIT + 40 and shown in body, body[:300]


@pytest.mark.spec("IO-MESSAGES")
@pytest.mark.parametrize("major", [3, 4])
@pytest.mark.parametrize("n", [1, 3, 8])
def test_an_npy_member_of_another_format_is_named(n: int, major: int, tmp_path: Path) -> None:
    """Before: format 3.0 gave numpy's AttributeError text (no read_array_header_3_0)."""
    path = tmp_path / "m.npz"
    save(model_of("Dense", n), path)
    members = members_of(path)
    body = bytearray(members["0.W.npy"])
    body[6:8] = bytes([major, 0])  # the version after the magic; 3.0's header is 2.0's in utf8
    members["0.W.npy"] = bytes(body)
    path.write_bytes(raw_zip(list(members.items())))
    message = refusal(path)
    assert f"member '0.W.npy' is .npy format {major}.0; refnn reads formats 1.0 and 2.0" in message


@pytest.mark.spec("IO-MESSAGES", "IO-LIMITS")
@pytest.mark.parametrize("n", [1, 3, 30])
def test_a_compressed_file_is_refused_saying_so(n: int, tmp_path: Path) -> None:
    """Before: np.savez_compressed's files were refused as declaring more bytes than they held."""
    path = tmp_path / "m.npz"
    save(model_of("Dense", n), path)
    with np.load(path, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    np.savez_compressed(tmp_path / "c.npz", **arrays)
    message = refusal(tmp_path / "c.npz")
    assert "is compressed" in message and "uncompressed members only" in message
    assert "not np.savez_compressed" in message


# ---------------------------------------------------------------------------------------------
# item 10: the clean-up removes only what no live writer holds (IO-CLEANUP)

_FOREIGN_WRITER = """
import os, sys
import numpy as np
from refnn import Dense, Sequential, save
path, n, pid = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
os.getpid = lambda: pid  # as a writer in another PID namespace: its pid means nothing here
models = [Sequential([Dense(n, n, rng=np.random.default_rng(s))]) for s in (1, 2)]
save(models[0], path)
print("ready", flush=True)
i = 0
while True:
    i += 1
    save(models[i % 2], path)
"""


def dead_pid() -> int:
    """A process id that no process on this host has now (that of a process that ended)."""
    done = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    return int(done.stdout)


@pytest.mark.spec("IO-CLEANUP", "IO-ATOMIC")
@pytest.mark.parametrize("n", [50, 300])
def test_a_live_writer_whose_pid_does_not_exist_here_keeps_its_temporary_file(
    n: int, tmp_path: Path
) -> None:
    """Before: every save here deleted the other writer's live temporary file (its pid did not
    exist on this host), and the other writer's rename failed."""
    path = tmp_path / "m.npz"
    proc = subprocess.Popen(
        [sys.executable, "-c", _FOREIGN_WRITER, str(path), str(n), str(dead_pid())],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=ROOT,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for seed in range(40):  # saves beside it, each cleaning up first
            save(model_of("Dense", 2, seed), tmp_path / "other.npz")
            assert proc.poll() is None, proc.communicate()[1][-2000:]
        assert load(path).layers[0].params["W"].shape == (n, n)
    finally:
        proc.kill()
        proc.communicate()
    age(*tmp_path.iterdir())
    save(model_of("Dense", 2), tmp_path / "other.npz")  # its writer is gone: removed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.npz", "other.npz"]


def age(*paths: Path, seconds: float = refnn.io.ABANDONED_AFTER + 60) -> None:
    """Set the modification time of ``paths`` ``seconds`` back (not following links)."""
    then = time.time() - seconds
    for path in paths:
        os.utime(path, (then, then), follow_symlinks=False)


@pytest.mark.spec("IO-CLEANUP")
@pytest.mark.parametrize("count", [1, 4, 16])
def test_only_unlocked_temporaries_of_this_naming_are_removed(count: int, tmp_path: Path) -> None:
    dead, mine = dead_pid(), os.getpid()
    abandoned = [f".m.npz.{pid}.a{i}{TMP_SUFFIX}" for i in range(count) for pid in (dead, mine)]
    held = [f".m.npz.{dead}.h{i}{TMP_SUFFIX}" for i in range(count)]
    recent = [f".m.npz.{dead}.r{i}{TMP_SUFFIX}" for i in range(count)]  # lock maybe not seen
    others = [
        *(f".m.npz.{dead}.old{i}.refnn-tmp" for i in range(count)),  # earlier versions': no lock
        f".m.npz.{dead}.x.tmp",
        f"notes{TMP_SUFFIX}",
    ]
    for name in abandoned + held + recent + others:
        (tmp_path / name).write_bytes(b"x" * 100)
    age(*(tmp_path / name for name in abandoned + held + others))
    (tmp_path / f".fifo.{dead}.f{TMP_SUFFIX}").parent.mkdir(exist_ok=True)
    os.mkfifo(tmp_path / f".fifo.{dead}.f{TMP_SUFFIX}")  # not a regular file: left, no waiting
    (tmp_path / f".link.{dead}.l{TMP_SUFFIX}").symlink_to(tmp_path / held[0])  # not followed
    locks = []
    for name in held:  # live writers elsewhere: each holds its file locked
        fd = os.open(tmp_path / name, os.O_RDONLY)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        locks.append(fd)
    try:
        save(model_of("Dense", 2), tmp_path / "m.npz")
    finally:
        for fd in locks:
            os.close(fd)
    left = {p.name for p in tmp_path.iterdir()}
    assert left.isdisjoint(abandoned)
    assert left == {
        "m.npz",
        *held,
        *recent,
        *others,
        f".fifo.{dead}.f{TMP_SUFFIX}",
        f".link.{dead}.l{TMP_SUFFIX}",
    }
    save(model_of("Dense", 2), tmp_path / "m.npz")  # the locks are released: now removed
    assert {p.name for p in tmp_path.iterdir()}.isdisjoint(held)
    assert {p.name for p in tmp_path.iterdir()}.issuperset(recent)  # until an hour has passed
    age(*(tmp_path / name for name in recent))
    save(model_of("Dense", 2), tmp_path / "m.npz")
    assert {p.name for p in tmp_path.iterdir()}.isdisjoint(recent)


@pytest.mark.spec("IO-CLEANUP", "IO-ATOMIC")
def test_threads_saving_into_one_directory_never_remove_each_others_files(tmp_path: Path) -> None:
    errors: list[BaseException] = []

    def run(k: int) -> None:
        try:
            for seed in range(15):
                save(model_of("Dense", 30, seed), tmp_path / f"m{k}.npz")
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=run, args=(k,)) for k in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m0.npz", "m1.npz", "m2.npz"]
