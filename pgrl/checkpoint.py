"""Checkpoint storage: one safetensors file per checkpoint, written atomically, read safely.

A checkpoint is a flat ``name -> tensor`` mapping plus a JSON-serialisable ``meta`` mapping
(step counters, config, RNG states). It is stored as a single safetensors file whose header
metadata holds:

- ``pgrl.format``: the marker ``"pgrl-checkpoint"``;
- ``pgrl.version``: the storage format version, ``"1"``;
- ``pgrl.meta``: ``meta`` as a JSON string;
- ``pgrl.sha256``: a SHA-256 over the meta JSON and every tensor's name, dtype, shape and raw
  bytes, in sorted name order.

Loading never executes code: there is no pickle and no ``torch.load``, only a JSON header and
raw tensor bytes. A file that is missing, empty, truncated, of another format or corrupt raises
:class:`~pgrl.errors.CheckpointError` with a message that names the file and the problem.

Saving writes to a temporary file beside the target, fsyncs it, renames it over the target and
fsyncs the directory, so a crash (SIGKILL, power loss, full disk) leaves either the previous
checkpoint or the new one at the path, never a partial file.

The training loop owns what goes into a checkpoint; this module only stores and checks it. The
RNG helpers at the end turn Python, NumPy and torch generator states into JSON for ``meta``.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import hashlib
import json
import os
import random
import secrets
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
import safetensors.torch
import torch

from pgrl.errors import CheckpointError

FORMAT_KEY = "pgrl.format"
VERSION_KEY = "pgrl.version"
META_KEY = "pgrl.meta"
CHECKSUM_KEY = "pgrl.sha256"
FORMAT = "pgrl-checkpoint"
VERSION = "1"

# The same bound safetensors itself enforces on the JSON header; a larger declared size means
# the file is not a safetensors file (a pickle or zip archive decodes to an absurd length).
_MAX_HEADER_BYTES = 100_000_000
# os.write on Linux transfers at most about 2 GiB per call; 64 MiB chunks stay well below.
_WRITE_CHUNK_BYTES = 64 * 2**20


def save_checkpoint(
    path: str | Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]
) -> Path:
    """Atomically write ``tensors`` and ``meta`` to one safetensors file at ``path``.

    Tensors are detached, moved to the CPU and made contiguous; tensors that share storage
    (tied weights, views) are stored as independent copies. ``meta`` must be JSON made of
    dicts with string keys, lists (tuples are stored as lists), str, int, finite float, bool
    and None.

    The bytes go to a temporary file ``.<name>.tmp-<pid>-<random>`` in the same directory,
    which is fsynced and then renamed over ``path``; the directory is fsynced last. If any step
    fails, the temporary file is removed and whatever was at ``path`` before stays untouched.

    Args:
        path: File to write; its directory must exist.
        tensors: Named tensors of any shape and any dtype safetensors supports.
        meta: JSON-serialisable metadata, returned as a ``dict`` by :func:`load_checkpoint`.

    Returns:
        ``path`` as a :class:`~pathlib.Path`.

    Raises:
        CheckpointError: If a tensor or meta value cannot be stored (the message names the
            key), or if writing fails (the message names the path and the OS error, e.g. "No
            space left on device").

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as run_dir:
        ...     file = f"{run_dir}/ckpt.safetensors"
        ...     _ = save_checkpoint(file, {"w": torch.ones(2)}, {"step": 7})
        ...     load_checkpoint(file)
        ({'w': tensor([1., 1.])}, {'step': 7})
    """
    path = Path(path)
    meta_json = _meta_to_json(meta)
    prepared = _prepare_tensors(tensors)
    header_metadata = {
        FORMAT_KEY: FORMAT,
        VERSION_KEY: VERSION,
        META_KEY: meta_json,
        CHECKSUM_KEY: _checksum(meta_json, prepared),
    }
    try:
        data = safetensors.torch.save(prepared, metadata=header_metadata)
    except Exception as error:  # safetensors raises plain Exceptions (e.g. for complex dtypes)
        raise CheckpointError(f"could not serialise checkpoint {path}: {error}") from error
    _write_atomically(path, data)
    return path


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read and verify a checkpoint written by :func:`save_checkpoint`, executing no code.

    The checks run in this order, and the first that fails raises: the file exists and is
    readable; it is not empty; it starts with a plausible safetensors header of valid JSON; the
    header carries the pgrl format marker and version ``"1"``; safetensors can read every
    tensor (this catches truncation); the SHA-256 over meta and tensors matches.

    Temporary files left by an interrupted save are separate files and are never read.

    Args:
        path: Checkpoint file.

    Returns:
        ``(tensors, meta)``: the tensors on the CPU, and meta as decoded JSON.

    Raises:
        CheckpointError: If any check fails; the message names the file and the problem.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except OSError as error:
        raise CheckpointError(f"could not read checkpoint {path}: {_reason(error)}") from error
    if not data:
        raise CheckpointError(
            f"checkpoint {path} is empty (0 bytes); it was not written completely"
        )
    metadata = _read_header_metadata(path, data)
    if metadata.get(FORMAT_KEY) != FORMAT:
        raise CheckpointError(
            f"{path} is a safetensors file but not a pgrl checkpoint "
            f"(its header has no {FORMAT_KEY!r}: {FORMAT!r} marker)"
        )
    version = metadata.get(VERSION_KEY)
    if version != VERSION:
        raise CheckpointError(
            f"{path} has pgrl checkpoint format version {version!r}; "
            f"this version of pgrl reads only version {VERSION!r}"
        )
    try:
        tensors = safetensors.torch.load(data)
    except Exception as error:  # safetensors reports damage as SafetensorError, a bare Exception
        raise CheckpointError(
            f"{path} is truncated or damaged: safetensors cannot read its tensors ({error})"
        ) from error
    meta_json = metadata.get(META_KEY)
    expected = metadata.get(CHECKSUM_KEY)
    if not isinstance(meta_json, str) or not isinstance(expected, str):
        raise CheckpointError(
            f"{path} is damaged: its header lacks {META_KEY!r} or {CHECKSUM_KEY!r}"
        )
    actual = _checksum(meta_json, tensors)
    if actual != expected:
        raise CheckpointError(
            f"{path} checksum mismatch: the file is corrupt (expected {expected}, got {actual})"
        )
    try:
        meta = json.loads(meta_json)
    except ValueError as error:  # only reachable if a writer other than save_checkpoint made it
        raise CheckpointError(f"{path} is damaged: its meta is not valid JSON ({error})") from error
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is damaged: its meta is not a JSON object")
    return tensors, meta


def _read_header_metadata(path: Path, data: bytes) -> dict[str, Any]:
    """Parse the safetensors header by hand and return its ``__metadata__`` mapping.

    safetensors' layout: an 8-byte little-endian header length n, n bytes of JSON, then the
    tensor data. Parsing it here, before safetensors does, lets a foreign file (pickle, zip,
    random bytes) fail with a message about what the file is rather than a parser error.
    """
    if len(data) < 8:
        raise CheckpointError(
            f"{path} is not a pgrl checkpoint (not a safetensors file: it has only {len(data)} "
            "bytes, fewer than the 8-byte header length)"
        )
    header_size = int.from_bytes(data[:8], "little")
    if header_size < 2 or header_size > _MAX_HEADER_BYTES:
        raise CheckpointError(
            f"{path} is not a pgrl checkpoint (not a safetensors file: its first 8 bytes declare "
            f"an implausible {header_size}-byte header{_foreign_format_hint(data)})"
        )
    if 8 + header_size > len(data):
        raise CheckpointError(
            f"{path} is truncated or not a pgrl checkpoint (not a safetensors file: the header "
            f"declares {header_size} bytes but only {len(data) - 8} follow)"
        )
    try:
        header = json.loads(data[8 : 8 + header_size].decode("utf-8"))
    except ValueError as error:  # UnicodeDecodeError and JSONDecodeError are both ValueErrors
        raise CheckpointError(
            f"{path} is not a pgrl checkpoint (not a safetensors file: its header is not valid "
            f"JSON: {error})"
        ) from error
    if not isinstance(header, dict):
        raise CheckpointError(
            f"{path} is not a pgrl checkpoint (not a safetensors file: its header is not a JSON "
            "object)"
        )
    metadata = header.get("__metadata__")
    return metadata if isinstance(metadata, dict) else {}


def _foreign_format_hint(data: bytes) -> str:
    """Name the likely format of a file that is not safetensors, to point at the way out."""
    if data.startswith(b"PK\x03\x04"):
        return "; it looks like a zip archive such as torch.save writes, which pgrl never loads"
    if data[:1] == b"\x80":
        return "; it looks like a pickle, which pgrl never loads because unpickling runs code"
    return ""


def _meta_to_json(meta: Mapping[str, Any]) -> str:
    """Serialise ``meta`` to compact JSON, naming the first key JSON cannot store faithfully."""
    if not isinstance(meta, Mapping):
        raise CheckpointError(f"checkpoint meta must be a mapping, not {type(meta).__name__}")
    _check_json_value(meta, "meta")
    # allow_nan=False: NaN and Infinity are not JSON, and other readers of the header reject
    # them; _check_json_value has already named the offending key.
    return json.dumps(dict(meta), allow_nan=False, separators=(",", ":"))


def _check_json_value(value: Any, where: str) -> None:
    """Raise CheckpointError naming ``where`` if ``value`` would not round-trip through JSON."""
    if value is None or isinstance(value, (bool, int, str)):
        return
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise CheckpointError(
                f"checkpoint {where} is {value!r}; JSON stores only finite numbers"
            )
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                # json.dumps would silently turn 1 into "1", so the value would not round-trip
                raise CheckpointError(
                    f"checkpoint {where} has key {key!r} of type {type(key).__name__}; "
                    "JSON object keys must be str"
                )
            _check_json_value(item, f"{where}[{key!r}]")
        return
    if isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _check_json_value(item, f"{where}[{index}]")
        return
    raise CheckpointError(
        f"checkpoint {where} has type {type(value).__module__}.{type(value).__qualname__}, "
        "which JSON cannot store; convert it (e.g. float(x), int(x) or x.tolist())"
    )


def _prepare_tensors(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Detach, move to the CPU and make contiguous; copy tensors whose storage is shared."""
    prepared: dict[str, torch.Tensor] = {}
    seen_storages: set[int] = set()
    for name, tensor in tensors.items():
        if not isinstance(name, str) or name == "__metadata__":
            raise CheckpointError(f"checkpoint tensor name {name!r} is not allowed")
        if not isinstance(tensor, torch.Tensor):
            raise CheckpointError(
                f"checkpoint tensor {name!r} is a {type(tensor).__name__}, not a torch.Tensor"
            )
        try:
            cpu = tensor.detach().to("cpu").contiguous()
        except RuntimeError as error:  # e.g. sparse or meta-device tensors have no dense bytes
            message = f"checkpoint tensor {name!r} cannot be stored: {error}"
            raise CheckpointError(message) from error
        storage = cpu.untyped_storage().data_ptr()
        # safetensors refuses tensors that share memory (tied weights, views of one buffer),
        # so every tensor after the first on a storage is stored as its own copy.
        if storage in seen_storages:
            cpu = cpu.clone()
        seen_storages.add(cpu.untyped_storage().data_ptr())
        prepared[name] = cpu
    return prepared


def _checksum(meta_json: str, tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over meta and tensors in a canonical, unambiguous serialisation.

    Every field is length-prefixed, so no two different checkpoints serialise alike: the
    format tag, the meta JSON, then for each tensor in sorted name order its name, dtype,
    shape (as JSON) and raw little-endian bytes.
    """
    digest = hashlib.sha256()

    def field(data: bytes | memoryview) -> None:
        digest.update(len(data).to_bytes(8, "little"))
        digest.update(data)

    field(f"{FORMAT}/{VERSION}".encode())
    field(meta_json.encode())
    for name in sorted(tensors):
        tensor = tensors[name]
        field(name.encode())
        field(str(tensor.dtype).encode())
        field(json.dumps(list(tensor.shape)).encode())
        field(_raw_bytes(tensor))
    return digest.hexdigest()


def _raw_bytes(tensor: torch.Tensor) -> memoryview:
    """The bytes of a contiguous CPU tensor without copying (works for bfloat16 and bool too)."""
    flat_bytes = tensor.contiguous().reshape(-1).view(torch.uint8)
    return flat_bytes.numpy().data


def _write_atomically(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a fsynced temporary file and an atomic rename."""
    # The temporary file must be in the target's directory: os.replace is atomic only within
    # one filesystem. The pid and random suffix keep concurrent writers from colliding.
    temp_path = path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    descriptor = -1
    try:
        descriptor = os.open(
            temp_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666
        )
        remaining = memoryview(data)
        while remaining:
            written = os.write(descriptor, remaining[:_WRITE_CHUNK_BYTES])
            if written <= 0:
                raise OSError(errno.EIO, "write made no progress")
            remaining = remaining[written:]
        # fsync before the rename: otherwise a power loss can leave the new name pointing at
        # a file whose data blocks were never written (the classic ext4 zero-length file).
        os.fsync(descriptor)
        os.close(descriptor)
        descriptor = -1
        os.replace(temp_path, path)
    except BaseException as error:
        # Cleanup errors are suppressed: the original error is the one the user must see.
        if descriptor >= 0:
            with contextlib.suppress(OSError):
                os.close(descriptor)
        with contextlib.suppress(OSError):  # never created, or already gone
            os.unlink(temp_path)
        if isinstance(error, OSError):
            kept = "the previous checkpoint is kept" if path.exists() else "nothing was written"
            raise CheckpointError(
                f"could not save checkpoint {path}: {_reason(error)}; {kept}"
            ) from error
        raise
    _fsync_directory(path)
    _remove_stale_temporaries(path)


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files of ``path`` left by writers that were killed mid-save.

    A writer killed by SIGKILL or a power loss cannot clean up after itself; its
    ``.<name>.tmp-<pid>-<random>`` file would stay forever. A file whose pid no longer runs
    is removed; one of a live process (another writer, mid-save) is left alone.
    """
    if os.name != "posix":
        return
    for temp in path.parent.glob(f".{path.name}.tmp-*-*"):
        try:
            pid = int(temp.name.rsplit("-", 2)[1])
        except (IndexError, ValueError):
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)  # signal 0: only asks whether the process exists
        except ProcessLookupError:
            with contextlib.suppress(OSError):
                temp.unlink()
        except OSError:  # it exists but belongs to someone else: not ours to judge
            continue


def _fsync_directory(path: Path) -> None:
    """Make the rename onto ``path`` durable by fsyncing the directory that holds it."""
    if os.name != "posix":
        return  # Windows cannot open a directory for fsync; NTFS journals renames itself
    try:
        descriptor = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
    except OSError as error:
        if error.errno in (errno.EINVAL, errno.ENOTSUP):
            return  # this filesystem cannot sync directories; there is nothing more to do
        raise CheckpointError(
            f"saved checkpoint {path}, but could not sync its directory ({_reason(error)}); "
            "the new checkpoint is in place but may not survive a power loss"
        ) from error


def _reason(error: OSError) -> str:
    """The human part of an OSError, e.g. "No space left on device"."""
    return error.strerror or str(error)


class RngState(TypedDict):
    """The global random generators' states as JSON, from :func:`capture_rng`."""

    python: dict[str, Any]
    """``random.getstate()``: ``version``, ``state`` (625 ints) and ``gauss_next``."""
    numpy: dict[str, Any]
    """NumPy's legacy global ``np.random`` state: an MT19937 ``key``, ``pos`` and Gaussian cache."""
    torch: str
    """``torch.get_rng_state()`` (the CPU generator) as base64."""


def capture_rng() -> RngState:
    """Capture Python's, NumPy's global and torch's CPU random states as JSON-serialisable data.

    CUDA generators are not captured. Gymnasium environments and spaces keep their own
    ``np.random.Generator``; save those with :func:`generator_state`.

    Returns:
        A dict that survives ``json.dumps``/``json.loads`` and :func:`restore_rng` accepts.
    """
    version, internal_state, gauss_next = random.getstate()
    name, key, pos, has_gauss, cached_gaussian = np.random.get_state(legacy=True)
    return {
        "python": {"version": version, "state": list(internal_state), "gauss_next": gauss_next},
        "numpy": {
            "bit_generator": name,
            "key": np.asarray(key).tolist(),
            "pos": int(pos),
            "has_gauss": int(has_gauss),
            "cached_gaussian": float(cached_gaussian),
        },
        "torch": base64.b64encode(torch.get_rng_state().numpy().tobytes()).decode("ascii"),
    }


def restore_rng(state: Mapping[str, Any]) -> None:
    """Restore the states captured by :func:`capture_rng`; all three or, on error, none.

    Args:
        state: The dict from :func:`capture_rng`, possibly after a JSON round trip.

    Raises:
        CheckpointError: If ``state`` is malformed; the generators are then left unchanged.
    """
    try:
        python = state["python"]
        python_state = (
            int(python["version"]),
            tuple(int(word) for word in python["state"]),
            None if python["gauss_next"] is None else float(python["gauss_next"]),
        )
        legacy = state["numpy"]
        numpy_state = (
            str(legacy["bit_generator"]),
            np.asarray(legacy["key"], dtype=np.uint32),
            int(legacy["pos"]),
            int(legacy["has_gauss"]),
            float(legacy["cached_gaussian"]),
        )
        torch_bytes = bytearray(base64.b64decode(state["torch"], validate=True))
        torch_state = torch.frombuffer(torch_bytes, dtype=torch.uint8)
    except (KeyError, TypeError, ValueError, OverflowError) as error:
        raise CheckpointError(
            f"cannot restore RNG state: it is malformed ({type(error).__name__}: {error})"
        ) from error
    previous = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    try:
        torch.set_rng_state(torch_state)
        np.random.set_state(numpy_state)
        random.setstate(python_state)
    except (KeyError, IndexError, TypeError, ValueError, OverflowError, RuntimeError) as error:
        # Roll back so a half-restored run cannot silently continue with mixed streams.
        random.setstate(previous[0])
        np.random.set_state(previous[1])
        torch.set_rng_state(previous[2])
        raise CheckpointError(
            f"cannot restore RNG state: it does not fit this generator ({error})"
        ) from error


def generator_state(generator: np.random.Generator) -> dict[str, Any]:
    """A NumPy Generator's bit-generator state as JSON-serialisable data.

    Used for Gymnasium's ``env.np_random`` and each space's ``np_random``. PCG64 states are
    128-bit Python ints, which JSON stores exactly; array fields (MT19937, Philox, SFC64)
    become lists.

    Args:
        generator: Any ``np.random.Generator``.

    Returns:
        A dict that :func:`set_generator_state` accepts after ``json.dumps``/``json.loads``.

    Example:
        >>> rng = np.random.default_rng(0)
        >>> saved = json.loads(json.dumps(generator_state(rng)))
        >>> first = rng.random()
        >>> set_generator_state(rng, saved)
        >>> rng.random() == first
        True
    """
    return {key: _plain_json(item) for key, item in generator.bit_generator.state.items()}


def set_generator_state(generator: np.random.Generator, state: Mapping[str, Any]) -> None:
    """Set a NumPy Generator's state from :func:`generator_state`'s output.

    Args:
        generator: The generator to rewind; its bit generator must be of the saved kind.
        state: The dict from :func:`generator_state`, possibly after a JSON round trip.

    Raises:
        CheckpointError: If ``state`` is malformed or for another kind of bit generator.
    """
    try:
        generator.bit_generator.state = dict(state)
    except (KeyError, IndexError, TypeError, ValueError, OverflowError) as error:
        raise CheckpointError(
            f"cannot restore {type(generator.bit_generator).__name__} generator state "
            f"({type(error).__name__}: {error})"
        ) from error


def _plain_json(value: Any) -> Any:
    """Recursively turn NumPy arrays and scalars into lists and Python numbers."""
    if isinstance(value, dict):
        return {key: _plain_json(item) for key, item in value.items()}
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value
