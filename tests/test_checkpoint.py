"""Tests for pgrl.checkpoint: round trips, crash safety, refusal of foreign and corrupt files."""

from __future__ import annotations

import errno
import json
import os
import pathlib
import pickle
import random
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import safetensors.torch
import torch

from pgrl import checkpoint
from pgrl.checkpoint import (
    capture_rng,
    generator_state,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
    set_generator_state,
)
from pgrl.errors import CheckpointError

REPO_ROOT = Path(__file__).resolve().parents[1]


def _small_checkpoint(path: Path) -> bytes:
    """Save a small checkpoint with three dtypes at ``path`` and return its bytes."""
    tensors = {
        "w": torch.arange(12, dtype=torch.float32).reshape(3, 4),
        "count": torch.tensor([1, 2, 3]),
        "mask": torch.tensor([True, False]),
    }
    save_checkpoint(path, tensors, {"step": 3, "name": "ppo"})
    return path.read_bytes()


def _header_end(data: bytes) -> int:
    """Offset of the first tensor-data byte: 8 length bytes plus the JSON header."""
    return 8 + int.from_bytes(data[:8], "little")


def _assert_refused(path: Path, match: str | None = None) -> CheckpointError:
    """Assert that loading ``path`` raises CheckpointError naming the file (and ``match``)."""
    with pytest.raises(CheckpointError) as caught:
        load_checkpoint(path)
    message = str(caught.value)
    assert path.name in message, message
    if match is not None:
        assert match in message, message
    return caught.value


def test_round_trip_preserves_every_tensor_and_nested_meta(tmp_path: Path) -> None:
    generator = torch.Generator().manual_seed(0)
    shared = torch.randn(4, 3, generator=generator)
    tensors = {
        "float32": torch.randn(3, 4, generator=generator),
        "float64_5d": torch.randn(2, 1, 3, 1, 2, generator=generator, dtype=torch.float64),
        "float16": torch.randn(5, generator=generator).half(),
        "bfloat16": torch.randn(5, generator=generator).bfloat16(),
        "int64": torch.arange(-5, 5),
        "bool": torch.tensor([[True, False], [False, True]]),
        "scalar": torch.tensor(3.5),
        "zero_size": torch.zeros(0, 7),
        "transposed": torch.randn(3, 5, generator=generator).t(),
        "parameter": torch.nn.Parameter(torch.randn(2, 2, generator=generator)),
        # Tied weights and a view of them: safetensors alone refuses tensors that share memory.
        "tied_a": shared,
        "tied_b": shared,
        "tied_view": shared[1:],
    }
    meta = {
        "step": 10,
        "config": {"gamma": 0.99, "hidden": [64, 64], "algo": "ppo", "flag": True, "x": None},
        "big_int": 2**100,
        "negative_float": -1.5e-300,
        "unicode": "γλ ✓",
        "rng": capture_rng(),
        "env_rng": generator_state(np.random.default_rng(1)),
        "empty": {"list": [], "dict": {}},
    }
    path = tmp_path / "ckpt.safetensors"

    assert save_checkpoint(str(path), tensors, meta) == path
    loaded, loaded_meta = load_checkpoint(path)

    assert loaded.keys() == tensors.keys()
    for name, original in tensors.items():
        assert loaded[name].dtype == original.dtype, name
        assert loaded[name].shape == original.shape, name
        assert torch.equal(loaded[name], original.detach()), name
    assert loaded_meta == meta
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.safetensors"]


def test_round_trip_of_no_tensors_and_tuple_meta_stored_as_list(tmp_path: Path) -> None:
    path = tmp_path / "meta_only.safetensors"
    save_checkpoint(path, {}, {"hidden": (64, 64)})
    assert load_checkpoint(path) == ({}, {"hidden": [64, 64]})


def test_checkpoint_is_a_plain_safetensors_file_with_pgrl_metadata(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, {"w": torch.ones(2)}, {"step": 1})
    with safetensors.safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
        assert torch.equal(handle.get_tensor("w"), torch.ones(2))
    assert metadata["pgrl.format"] == "pgrl-checkpoint"
    assert metadata["pgrl.version"] == "1"
    assert json.loads(metadata["pgrl.meta"]) == {"step": 1}
    assert len(metadata["pgrl.sha256"]) == 64


@pytest.mark.parametrize(
    ("meta", "named"),
    [
        ({"optim": {"lr": float("nan")}}, "['optim']['lr']"),
        ({"returns": [1.0, float("inf")]}, "['returns'][1]"),
        ({"table": {1: "one"}}, "['table']"),
        ({"score": np.float32(1.0)}, "['score']"),
        ({"env": object()}, "['env']"),
    ],
)
def test_meta_json_cannot_store_is_refused_naming_the_key(
    tmp_path: Path, meta: dict[str, Any], named: str
) -> None:
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, {"w": torch.zeros(1)}, {"step": 1})
    with pytest.raises(CheckpointError, match=None) as caught:
        save_checkpoint(path, {"w": torch.ones(1)}, meta)
    assert named in str(caught.value)
    assert load_checkpoint(path)[1] == {"step": 1}


# The saver forks one child per line read from stdin, so torch is imported once and each
# child starts saving within milliseconds (a fresh interpreter takes over a second here).
# Each child saves forever, every save holding its own counter i in every tensor element.
_SAVER_SCRIPT = r"""
import os, sys, traceback
import torch
from pgrl.checkpoint import save_checkpoint

path, elements = sys.argv[1], int(sys.argv[2])
for line in sys.stdin:
    pid = os.fork()
    if pid == 0:
        try:
            i = int(line)
            while True:
                weights = torch.full((elements,), float(i))
                steps = torch.full((elements // 2,), i, dtype=torch.int64)
                save_checkpoint(path, {"weights": weights, "steps": steps}, {"i": i})
                i += 1
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(1)
    print(pid, flush=True)
    print(os.waitpid(pid, 0)[1], flush=True)
"""


def _read_int_line(stream: Any, timeout: float) -> int:
    """Read one line holding an int from an unbuffered pipe, failing instead of hanging."""
    line = b""
    deadline = time.monotonic() + timeout
    while not line.endswith(b"\n"):
        ready, _, _ = select.select([stream], [], [], max(0.0, deadline - time.monotonic()))
        assert ready, f"saver process sent no line within {timeout} s"
        chunk = os.read(stream.fileno(), 1)
        assert chunk, "saver process exited early; see its stderr above"
        line += chunk
    return int(line)


def _assert_complete(path: Path, previous_i: int) -> int:
    """Load ``path``, check that every value equals meta's i and i never goes back; return i."""
    tensors, meta = load_checkpoint(path)
    i = meta["i"]
    assert i >= previous_i, f"checkpoint went back from save {previous_i} to {i}"
    assert tensors["weights"].shape == (2**19,)
    assert tensors["steps"].shape == (2**18,)
    assert bool((tensors["weights"] == i).all())
    assert bool((tensors["steps"] == i).all())
    return int(i)


def test_sigkill_during_saves_never_leaves_a_partial_checkpoint(tmp_path: Path) -> None:
    kills = 25
    path = tmp_path / "ckpt.safetensors"
    # 2 MiB of float32 and 2 MiB of int64 per save, so a save spends real time in write/fsync.
    elements = 2**19
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
        "OMP_NUM_THREADS": "1",
    }
    saver = subprocess.Popen(
        [sys.executable, "-c", _SAVER_SCRIPT, str(path), str(elements)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        bufsize=0,
        env=environment,
    )
    assert saver.stdin is not None and saver.stdout is not None
    delays = random.Random(0)
    last_i = -1
    kills_mid_save = 0
    try:
        for _ in range(kills):
            saver.stdin.write(f"{last_i + 1}\n".encode())
            child = _read_int_line(saver.stdout, timeout=30)
            deadline = time.monotonic() + 10
            while not path.exists():
                assert time.monotonic() < deadline, "the saver never wrote a first checkpoint"
                time.sleep(0.001)
            # Read while the child writes: a reader racing the writer must never see a
            # partial file at the final path either.
            kill_at = time.monotonic() + delays.uniform(0.0, 0.2)
            while time.monotonic() < kill_at:
                last_i = _assert_complete(path, last_i)
            os.kill(child, signal.SIGKILL)
            status = _read_int_line(saver.stdout, timeout=30)
            assert os.WIFSIGNALED(status), "the saving child died on its own, not by SIGKILL"
            assert os.WTERMSIG(status) == signal.SIGKILL
            last_i = _assert_complete(path, last_i)
            # A temporary file from this child means the kill landed inside a write.
            if any(tmp_path.glob(f".ckpt.safetensors.tmp-{child}-*")):
                kills_mid_save += 1
    finally:
        saver.stdin.close()
        saver.kill()
        saver.wait()
    assert last_i > 0, "no save ever completed, so the test proved nothing"
    assert kills_mid_save > 0, "no kill landed mid-save, so the test proved nothing"
    leftovers = {p.name for p in tmp_path.iterdir()} - {"ckpt.safetensors"}
    assert all(name.startswith(".ckpt.safetensors.tmp-") for name in leftovers), leftovers


class _TouchOnUnpickle:
    """An object whose unpickling creates ``marker``: stands in for arbitrary code execution."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[Any, ...]]:
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def _pickle_payload(marker: Path, into: Path) -> None:
    into.write_bytes(pickle.dumps({"weights": _TouchOnUnpickle(marker)}))


def _torch_save_payload(marker: Path, into: Path) -> None:
    torch.save({"weights": _TouchOnUnpickle(marker)}, into)


def _unpickle(path: Path) -> None:
    pickle.loads(path.read_bytes())


def _torch_load(path: Path) -> None:
    torch.load(path, weights_only=False)


@pytest.mark.parametrize(
    ("write_payload", "unsafe_load"),
    [(_pickle_payload, _unpickle), (_torch_save_payload, _torch_load)],
    ids=["pickle", "torch.save"],
)
def test_malicious_pickle_is_refused_without_running_its_code(
    tmp_path: Path,
    write_payload: Callable[[Path, Path], None],
    unsafe_load: Callable[[Path], None],
) -> None:
    # First prove the payload is live: an unsafe loader does create its marker.
    live_marker = tmp_path / "live_marker"
    write_payload(live_marker, tmp_path / "live.bin")
    unsafe_load(tmp_path / "live.bin")
    assert live_marker.exists()

    marker = tmp_path / "pwned_marker"
    path = tmp_path / "ckpt.safetensors"
    write_payload(marker, path)
    _assert_refused(path, match="not a pgrl checkpoint")
    assert not marker.exists()


def test_missing_file_is_refused(tmp_path: Path) -> None:
    _assert_refused(tmp_path / "absent.safetensors", match="does not exist")


def test_directory_is_refused(tmp_path: Path) -> None:
    directory = tmp_path / "ckpt.safetensors"
    directory.mkdir()
    _assert_refused(directory)


def test_empty_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.safetensors"
    path.write_bytes(b"")
    _assert_refused(path, match="empty")


def test_truncation_at_every_offset_is_refused(tmp_path: Path) -> None:
    data = _small_checkpoint(tmp_path / "good.safetensors")
    path = tmp_path / "cut.safetensors"
    for cut in range(1, len(data)):
        path.write_bytes(data[:cut])
        _assert_refused(path)


def test_flipped_byte_in_tensor_data_is_a_checksum_mismatch(tmp_path: Path) -> None:
    data = _small_checkpoint(tmp_path / "good.safetensors")
    path = tmp_path / "flipped.safetensors"
    assert _header_end(data) < len(data)
    for position in range(_header_end(data), len(data)):
        corrupt = bytearray(data)
        corrupt[position] ^= 0x01
        path.write_bytes(corrupt)
        _assert_refused(path, match="checksum mismatch: the file is corrupt")


@pytest.mark.parametrize("bit", [0x01, 0x20, 0x80])
def test_flipped_byte_anywhere_in_the_header_is_refused(tmp_path: Path, bit: int) -> None:
    data = _small_checkpoint(tmp_path / "good.safetensors")
    path = tmp_path / "flipped.safetensors"
    for position in range(_header_end(data)):
        corrupt = bytearray(data)
        corrupt[position] ^= bit
        path.write_bytes(corrupt)
        _assert_refused(path)


@pytest.mark.parametrize(
    ("original", "edited"),
    [
        (b'"w":{"dtype":"F32"', b'"w":{"dtype":"I32"'),
        (b'"shape":[3,4]', b'"shape":[4,3]'),
        (b'"w":{', b'"v":{'),
    ],
    ids=["dtype", "shape", "name"],
)
def test_header_edit_that_safetensors_accepts_is_a_checksum_mismatch(
    tmp_path: Path, original: bytes, edited: bytes
) -> None:
    # Same-length edits keep the file a valid safetensors file with the same data size, so
    # only the checksum over names, dtypes and shapes can notice them.
    data = _small_checkpoint(tmp_path / "good.safetensors")
    assert data.count(original) == 1
    path = tmp_path / "edited.safetensors"
    path.write_bytes(data.replace(original, edited))
    safetensors.torch.load(path.read_bytes())  # still readable without pgrl's checks
    _assert_refused(path, match="checksum mismatch")


def test_flipped_byte_in_stored_meta_is_a_checksum_mismatch(tmp_path: Path) -> None:
    data = _small_checkpoint(tmp_path / "good.safetensors")
    position = data.index(b'\\"ppo\\"') + 3  # inside the meta JSON string: 'ppo' -> 'pqo'
    corrupt = bytearray(data)
    corrupt[position] ^= 0x01
    path = tmp_path / "flipped.safetensors"
    path.write_bytes(corrupt)
    _assert_refused(path, match="checksum mismatch")


@pytest.mark.parametrize("size", [1, 7, 8, 9, 64, 4096, 100_000])
def test_random_bytes_are_refused(tmp_path: Path, size: int) -> None:
    path = tmp_path / "noise.safetensors"
    path.write_bytes(np.random.default_rng(size).bytes(size))
    _assert_refused(path, match="not a pgrl checkpoint")


def test_plausible_header_length_followed_by_garbage_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "garbage.safetensors"
    path.write_bytes((64).to_bytes(8, "little") + np.random.default_rng(0).bytes(200))
    _assert_refused(path, match="not valid JSON")


def test_torch_save_state_dict_is_refused_as_zip(tmp_path: Path) -> None:
    path = tmp_path / "model.pt"
    torch.save({"w": torch.ones(3)}, path)
    _assert_refused(path, match="zip")


@pytest.mark.parametrize(
    ("metadata", "match"),
    [
        (None, "not a pgrl checkpoint"),
        ({"pgrl.format": "something-else", "pgrl.version": "1"}, "not a pgrl checkpoint"),
        ({"pgrl.format": "pgrl-checkpoint", "pgrl.version": "2"}, "version '2'"),
        ({"pgrl.format": "pgrl-checkpoint"}, "version None"),
        ({"pgrl.format": "pgrl-checkpoint", "pgrl.version": "1"}, "lacks"),
    ],
    ids=["no-metadata", "wrong-marker", "newer-version", "no-version", "no-checksum"],
)
def test_safetensors_file_that_is_not_a_valid_pgrl_checkpoint_is_refused(
    tmp_path: Path, metadata: dict[str, str] | None, match: str
) -> None:
    path = tmp_path / "foreign.safetensors"
    safetensors.torch.save_file({"w": torch.ones(2)}, str(path), metadata=metadata)
    _assert_refused(path, match=match)


class _FailAfter:
    """Stands in for an os function: calls ``real`` ``successes`` times, then raises ENOSPC."""

    def __init__(self, successes: int, real: Callable[..., Any]) -> None:
        self.successes = successes
        self.real = real
        self.calls = 0

    def __call__(self, *args: Any) -> Any:
        self.calls += 1
        if self.calls > self.successes:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.real(*args)


@pytest.mark.parametrize(("failing", "successes"), [("write", 2), ("fsync", 0)])
def test_disk_full_keeps_the_previous_checkpoint_and_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failing: str, successes: int
) -> None:
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, {"w": torch.zeros(1000)}, {"step": 1})
    real_write = os.write

    def short_write(descriptor: int, data: Any) -> int:
        # Write at most 1 KiB per call, so the disk "fills" after part of the file is written.
        return real_write(descriptor, data[:1024])

    # ENOSPC can surface at write, or only at fsync on filesystems that delay allocation.
    fake = _FailAfter(successes, short_write if failing == "write" else os.fsync)
    with monkeypatch.context() as patch:
        patch.setattr(checkpoint.os, failing, fake)
        with pytest.raises(CheckpointError, match="No space left on device") as caught:
            save_checkpoint(path, {"w": torch.ones(1000)}, {"step": 2})
    assert fake.calls > successes, f"save_checkpoint never called os.{failing}"
    assert path.name in str(caught.value)
    assert "previous checkpoint is kept" in str(caught.value)
    tensors, meta = load_checkpoint(path)
    assert meta == {"step": 1}
    assert torch.equal(tensors["w"], torch.zeros(1000))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ckpt.safetensors"]


def test_save_into_missing_directory_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "no_such_dir" / "ckpt.safetensors"
    with pytest.raises(CheckpointError, match="nothing was written") as caught:
        save_checkpoint(path, {"w": torch.ones(1)}, {})
    assert str(path) in str(caught.value)


def _draw() -> tuple[float, float, list[float], list[float], list[float]]:
    """Draws from every global generator, including the cached-Gaussian paths."""
    return (
        random.random(),
        random.gauss(0.0, 1.0),
        np.random.rand(3).tolist(),
        np.random.randn(3).tolist(),
        torch.rand(3).tolist(),
    )


def test_restore_rng_replays_python_numpy_and_torch_draws() -> None:
    # One Gaussian each first, so Python's gauss_next and NumPy's cached Gaussian are set.
    random.gauss(0.0, 1.0)
    np.random.randn(1)
    state = json.loads(json.dumps(capture_rng()))
    first = _draw()
    restore_rng(state)
    assert _draw() == first


def test_malformed_rng_state_is_refused_and_changes_no_generator() -> None:
    saved = capture_rng()
    _draw()  # move every generator past the saved state
    current = capture_rng()
    # The torch part is valid and applied first; the NumPy key is too short and fails after it.
    bad_numpy = {**saved, "numpy": {**saved["numpy"], "key": [1, 2, 3]}}
    with pytest.raises(CheckpointError, match="RNG state"):
        restore_rng(bad_numpy)
    after_failed_restore = _draw()
    restore_rng(current)
    assert _draw() == after_failed_restore
    with pytest.raises(CheckpointError, match="malformed"):
        restore_rng({"python": saved["python"]})


@pytest.mark.parametrize(
    "bit_generator",
    [np.random.PCG64, np.random.PCG64DXSM, np.random.MT19937, np.random.Philox, np.random.SFC64],
)
def test_numpy_generator_state_round_trips_through_json(
    bit_generator: Callable[[int], np.random.BitGenerator],
) -> None:
    generator = np.random.Generator(bit_generator(12345))
    generator.random(3)
    generator.integers(0, 10, size=1, dtype=np.uint32)  # leaves a buffered half-word
    state = json.loads(json.dumps(generator_state(generator)))
    first = generator.random(5).tolist()
    set_generator_state(generator, state)
    assert generator.random(5).tolist() == first


def test_generator_state_of_another_kind_is_refused() -> None:
    pcg_state = generator_state(np.random.default_rng(0))
    with pytest.raises(CheckpointError, match="MT19937"):
        set_generator_state(np.random.Generator(np.random.MT19937(0)), pcg_state)


def test_a_save_removes_temporaries_of_killed_writers_only(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.safetensors"
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True
    )
    dead_pid = int(dead.stdout)  # that process has exited
    stale = tmp_path / f".ckpt.safetensors.tmp-{dead_pid}-0badc0de"
    live = tmp_path / f".ckpt.safetensors.tmp-{os.getppid()}-feedf00d"  # a live writer
    other = tmp_path / f".other.safetensors.tmp-{dead_pid}-0badc0de"  # not this checkpoint's
    for file in (stale, live, other):
        file.write_bytes(b"partial")
    save_checkpoint(path, {"w": torch.ones(3)}, {"step": 1})
    assert not stale.exists()
    assert live.exists() and other.exists()
    assert load_checkpoint(path)[1]["step"] == 1


# -- hostile files: refused before they are read (issue 11) ---------------------------------


def test_a_symlink_to_a_checkpoint_loads(tmp_path: Path) -> None:
    _small_checkpoint(tmp_path / "real.safetensors")
    (tmp_path / "link.safetensors").symlink_to(tmp_path / "real.safetensors")
    assert load_checkpoint(tmp_path / "link.safetensors")[1] == {"step": 3, "name": "ppo"}


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.safetensors"
    os.mkfifo(path)
    signal.signal(signal.SIGALRM, lambda *_: pytest.fail("load_checkpoint blocked on a FIFO"))
    signal.alarm(30)
    try:
        _assert_refused(path, match="FIFO")
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, signal.SIG_DFL)


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_a_symlink_to_a_device_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.safetensors"
    path.symlink_to("/dev/zero")
    _assert_refused(path, match="a device")


def test_a_sparse_file_is_refused_from_its_first_bytes(tmp_path: Path) -> None:
    path = tmp_path / "ckpt.safetensors"
    with open(path, "wb") as file:
        file.truncate(64 * 2**30)  # 64 GiB of holes; reading it whole raised MemoryError
    _assert_refused(path, match="implausible")


def test_a_valid_header_before_gigabytes_is_refused_before_reading_them(tmp_path: Path) -> None:
    data = _small_checkpoint(tmp_path / "good.safetensors")
    path = tmp_path / "padded.safetensors"
    with open(path, "wb") as file:
        file.write(data)
        file.truncate(64 * 2**30)
    _assert_refused(path, match="tensors cover")


def _claiming_header(path: Path, entry: dict[str, Any], data: bytes = b"\0" * 16) -> Path:
    header = {"__metadata__": {checkpoint.FORMAT_KEY: "pgrl-checkpoint", "pgrl.version": "1"}}
    header["w"] = entry
    raw = json.dumps(header).encode()
    path.write_bytes(len(raw).to_bytes(8, "little") + raw + data)
    return path


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        ({"dtype": "F32", "shape": [10**6, 10**6], "data_offsets": [0, 4 * 10**12]}, "up to"),
        ({"dtype": "F32", "shape": [2**20, 2**20], "data_offsets": [0, 16]}, "needs"),
        ({"dtype": "F32", "shape": [-1], "data_offsets": [0, 16]}, "invalid shape"),
        ({"dtype": "F32", "shape": [4], "data_offsets": [8, 0]}, "invalid data offsets"),
        ({"dtype": "F32", "shape": [4], "data_offsets": "all"}, "invalid data offsets"),
        ({"dtype": "OBJECT", "shape": [4], "data_offsets": [0, 16]}, "unknown dtype"),
        ({"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "tensors cover 8"),
        ("tensor", "no description"),
    ],
    ids=[
        "10e12-bytes",
        "2e20-squared",
        "negative",
        "reversed",
        "offsets-text",
        "dtype",
        "gap",
        "entry",
    ],
)
def test_a_header_that_does_not_fit_the_file_is_refused(
    tmp_path: Path, entry: Any, match: str
) -> None:
    _assert_refused(_claiming_header(tmp_path / "ckpt.safetensors", entry), match=match)


def test_a_file_larger_than_memory_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "ckpt.safetensors"
    _small_checkpoint(path)
    monkeypatch.setattr(checkpoint, "_physical_memory", lambda: 100)
    _assert_refused(path, match="more than this machine's memory")


def test_only_run_files_get_the_run_schema(tmp_path: Path) -> None:
    """Any meta round-trips; the schema of pgrl's runs applies to kind checkpoint and model."""
    path = tmp_path / "ckpt.safetensors"
    save_checkpoint(path, {}, {"kind": "something-else", "seed": "abc"})
    assert load_checkpoint(path)[1]["seed"] == "abc"
    save_checkpoint(path, {}, {"kind": "model", "seed": "abc"})
    _assert_refused(path, match="invalid metadata")
