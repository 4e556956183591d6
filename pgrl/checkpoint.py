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
import math
import os
import random
import secrets
import stat
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

    The checks run in this order, and the first that fails raises: the file exists, is a
    regular file (not a FIFO, a device or a directory, also behind a symlink) and is readable;
    it is not empty and not larger than this machine's memory; it starts with a plausible
    safetensors header of valid JSON whose declared length fits the file; the header carries
    the pgrl format marker and version ``"1"``; every tensor's dtype, shape and byte range
    agree with each other and lie inside the file (so no tensor can ask for more memory than
    the file holds); only then is the rest of the file read; safetensors can read every tensor;
    the SHA-256 over meta and tensors matches; the meta of a run's checkpoint or model (``kind``
    ``"checkpoint"`` or ``"model"``) passes :func:`check_run_meta`.

    Temporary files left by an interrupted save are separate files and are never read.

    Args:
        path: Checkpoint file.

    Returns:
        ``(tensors, meta)``: the tensors on the CPU, and meta as decoded JSON.

    Raises:
        CheckpointError: If any check fails; the message names the file and the problem.
    """
    path = Path(path)
    data = _read_checked(path)
    try:
        tensors = safetensors.torch.load(data)
    except Exception as error:  # safetensors reports damage as SafetensorError, a bare Exception
        raise CheckpointError(
            f"{path} is truncated or damaged: safetensors cannot read its tensors ({error})"
        ) from error
    metadata = _read_header_metadata(path, data)
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
    except (ValueError, RecursionError) as error:  # only from a writer other than pgrl
        raise CheckpointError(f"{path} is damaged: its meta is not valid JSON ({error})") from error
    if not isinstance(meta, dict):
        raise CheckpointError(f"{path} is damaged: its meta is not a JSON object")
    if meta.get("kind") in RUN_KINDS:
        check_run_meta(path, meta)
    return tensors, meta


def _read_checked(path: Path) -> bytes:
    """The bytes of checkpoint ``path``, read only after its header has been checked.

    Refuses, before reading or allocating anything sizeable: a missing file, anything but a
    regular file (a FIFO would block forever, ``/dev/zero`` never ends), a file larger than
    physical memory, a header whose declared length does not fit the file, a file of another
    format, and tensors whose byte ranges do not fit the file.
    """
    try:
        info = os.stat(path)  # follows a symlink: what matters is what it points to
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {path} does not exist") from None
    except OSError as error:
        raise CheckpointError(f"could not read checkpoint {path}: {_reason(error)}") from error
    _check_regular(path, info.st_mode)
    try:
        # O_NONBLOCK: should a FIFO replace the file between stat and open, open returns at
        # once instead of waiting for a writer; fstat below then refuses it.
        descriptor = os.open(
            path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
        )
    except OSError as error:
        raise CheckpointError(f"could not read checkpoint {path}: {_reason(error)}") from error
    with os.fdopen(descriptor, "rb") as file:
        info = os.fstat(file.fileno())
        _check_regular(path, info.st_mode)
        size = info.st_size
        if size == 0:
            raise CheckpointError(
                f"checkpoint {path} is empty (0 bytes); it was not written completely"
            )
        try:
            head = file.read(8)
            if len(head) < 8:
                raise CheckpointError(
                    f"{path} is not a pgrl checkpoint (not a safetensors file: it has only "
                    f"{len(head)} bytes, fewer than the 8-byte header length)"
                )
            header_size = int.from_bytes(head, "little")
            if header_size < 2 or header_size > _MAX_HEADER_BYTES:
                hint = _foreign_format_hint(head)
                raise CheckpointError(
                    f"{path} is not a pgrl checkpoint (not a safetensors file: its first 8 bytes "
                    f"declare an implausible {header_size}-byte header{hint})"
                )
            if 8 + header_size > size:
                raise CheckpointError(
                    f"{path} is truncated or not a pgrl checkpoint (not a safetensors file: the "
                    f"header declares {header_size} bytes but only {size - 8} follow)"
                )
            header_bytes = file.read(header_size)
            if len(header_bytes) != header_size:
                raise CheckpointError(f"{path} changed while it was read; try again")
            header = _parse_header(path, header_bytes)
            _check_marker(path, header)
            _check_tensor_ranges(path, header, size - 8 - header_size)
            memory = _physical_memory()
            if memory is not None and size > memory:
                raise CheckpointError(
                    f"checkpoint {path} is {_gib(size)}, more than this machine's memory "
                    f"({_gib(memory)}); it cannot be loaded here"
                )
            rest = file.read(size - 8 - header_size + 1)
        except OSError as error:
            raise CheckpointError(f"could not read checkpoint {path}: {_reason(error)}") from error
    if len(rest) != size - 8 - header_size:
        raise CheckpointError(f"{path} changed while it was read; try again")
    return head + header_bytes + rest


def _check_regular(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        what = "a directory"
    elif stat.S_ISFIFO(mode):
        what = "a FIFO (named pipe)"
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        what = "a device"
    elif stat.S_ISSOCK(mode):
        what = "a socket"
    else:
        what = "not a regular file"
    raise CheckpointError(f"{path} is {what}, not a checkpoint file; pgrl reads regular files only")


def _physical_memory() -> int | None:
    """Bytes of physical memory, or None where the system does not say."""
    try:
        pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return pages * page_size if pages > 0 and page_size > 0 else None


def _gib(size: int) -> str:
    return f"{size / 2**30:,.1f} GiB"


def _parse_header(path: Path, header_bytes: bytes) -> dict[str, Any]:
    try:
        header = json.loads(header_bytes.decode("utf-8"))
    except (ValueError, RecursionError) as error:  # UnicodeDecodeError, JSONDecodeError
        raise CheckpointError(
            f"{path} is not a pgrl checkpoint (not a safetensors file: its header is not valid "
            f"JSON: {error})"
        ) from None
    if not isinstance(header, dict):
        raise CheckpointError(
            f"{path} is not a pgrl checkpoint (not a safetensors file: its header is not a JSON "
            "object)"
        )
    return header


def _check_marker(path: Path, header: Mapping[str, Any]) -> None:
    metadata = header.get("__metadata__")
    metadata = metadata if isinstance(metadata, dict) else {}
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


# Bytes per element of each safetensors dtype that torch can hold.
_DTYPE_BYTES = {
    "BOOL": 1,
    "U8": 1,
    "I8": 1,
    "F8_E5M2": 1,
    "F8_E4M3": 1,
    "I16": 2,
    "U16": 2,
    "F16": 2,
    "BF16": 2,
    "I32": 4,
    "U32": 4,
    "F32": 4,
    "I64": 8,
    "U64": 8,
    "F64": 8,
}


def _check_tensor_ranges(path: Path, header: Mapping[str, Any], data_size: int) -> None:
    """Every tensor's byte range must lie in the file and match its dtype and shape.

    Checked with Python integers before anything is allocated, so a header that claims a
    tensor of 10**12 bytes (or a shape such as [2**20, 2**20]) in a small file is refused here.
    """
    end = 0
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        where = f"{path} is truncated or damaged: tensor {name!r}"
        if not isinstance(entry, dict):
            raise CheckpointError(f"{where} has no description in the header")
        dtype, shape, offsets = entry.get("dtype"), entry.get("shape"), entry.get("data_offsets")
        if dtype not in _DTYPE_BYTES:
            raise CheckpointError(f"{where} has unknown dtype {dtype!r}")
        if not isinstance(shape, list) or not all(_is_count(n) for n in shape):
            raise CheckpointError(f"{where} has an invalid shape {shape!r}")
        if (
            not isinstance(offsets, list)
            or len(offsets) != 2
            or not all(_is_count(n) for n in offsets)
            or offsets[0] > offsets[1]
        ):
            raise CheckpointError(f"{where} has invalid data offsets {offsets!r}")
        expected = math.prod(shape) * _DTYPE_BYTES[dtype]
        if offsets[1] > data_size:
            raise CheckpointError(
                f"{where} needs bytes up to {offsets[1]:,} but the file holds only "
                f"{data_size:,} bytes of tensor data"
            )
        if offsets[1] - offsets[0] != expected:
            raise CheckpointError(
                f"{where} of shape {shape} and dtype {dtype} needs {expected:,} bytes, "
                f"but {offsets[1] - offsets[0]:,} are stored"
            )
        end = max(end, offsets[1])
    if end != data_size:
        # safetensors' own rule: the tensors cover the data exactly. Checked here, before the
        # data is read, so a crafted header followed by gigabytes (a sparse file) costs nothing.
        raise CheckpointError(
            f"{path} is damaged or not a file pgrl wrote: its tensors cover {end:,} bytes but "
            f"{data_size:,} bytes of tensor data follow the header"
        )


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _read_header_metadata(path: Path, data: bytes) -> dict[str, Any]:
    """Parse the safetensors header by hand and return its ``__metadata__`` mapping.

    safetensors' layout: an 8-byte little-endian header length n, n bytes of JSON, then the
    tensor data. :func:`_read_checked` has already checked the length and the JSON.
    """
    header_size = int.from_bytes(data[:8], "little")
    header = _parse_header(path, data[8 : 8 + header_size])
    metadata = header.get("__metadata__")
    return metadata if isinstance(metadata, dict) else {}


RUN_KINDS = ("checkpoint", "model")
"""The ``kind`` of meta that pgrl's own runs write: a training checkpoint and a trained model."""

_MAX_SEED = 2**63 - 1


def check_run_meta(path: str | Path, meta: Mapping[str, Any]) -> None:
    """Check what pgrl reads from the meta of a run's checkpoint or model, before it reads it.

    The checksum has no key, so anyone can edit the meta and recompute it: the meta is
    untrusted input. Checked: ``algo`` is a known algorithm; ``env`` a non-empty string;
    ``seed`` an integer in [0, 2**63 - 1]; ``env_steps`` (and ``vector_steps``) integers >= 0;
    ``config`` a mapping that builds the algorithm's config (every bound of
    :func:`pgrl.config.check_field_value` applies, so no network size asks for terabytes);
    ``obs_space`` and ``act_space`` strings; the optional records (``env_source``,
    ``custom_networks``, ``observation_space``...) of the right type; and, for a training
    checkpoint, ``run`` a mapping of exactly the :class:`pgrl.run_state.RunSpec` fields with
    legal values, the loop counters, optimizer groups, RNG states, timings and history.

    Raises:
        CheckpointError: one line naming the file and the first field that is wrong.
    """
    kind = meta.get("kind")
    prefix = f"{path} has invalid metadata:"

    def bad(text: str) -> CheckpointError:
        return CheckpointError(f"{prefix} {text}")

    required = ["algo", "env", "config", "obs_space", "act_space"]
    if kind == "checkpoint":
        required += [
            "seed",
            "run",
            "env_steps",
            "vector_steps",
            "train_seconds",
            "eval_seconds",
            "optimizers",
            "rng",
            "loop",
            "history",
        ]
    missing = [name for name in required if name not in meta]
    if missing:
        raise bad(f"it lacks {', '.join(missing)} (a {kind} file always has them)")

    from pgrl.algos import ALGORITHMS, get_spec  # here: the algorithms import this module
    from pgrl.config import build_config
    from pgrl.errors import ConfigError

    algo = meta["algo"]
    if not isinstance(algo, str) or algo.lower() not in ALGORITHMS:
        raise bad(f"algo is {_short(algo)}, not one of {', '.join(sorted(ALGORITHMS))}")
    if not isinstance(meta["env"], str) or not meta["env"].strip():
        raise bad(f"env is {_short(meta['env'])}, not an environment name")
    if "seed" in meta and not (_is_count(meta["seed"]) and meta["seed"] <= _MAX_SEED):
        raise bad(f"seed is {_short(meta['seed'])}, not an integer in [0, 2**63 - 1]")
    for name in ("env_steps", "vector_steps"):
        if name in meta and not _is_count(meta[name]):
            raise bad(f"{name} is {_short(meta[name])}, not an integer >= 0")
    for name in ("obs_space", "act_space", "env_why_not", "device"):
        if name in meta and not isinstance(meta[name], str):
            raise bad(f"{name} is {_short(meta[name])}, not a string")
    for name in ("observation_space", "action_space"):
        if name in meta and not isinstance(meta[name], dict):
            raise bad(f"{name} is {_short(meta[name])}, not a mapping")
    if "env_source" in meta and not (
        meta["env_source"] is None or isinstance(meta["env_source"], dict)
    ):
        raise bad(f"env_source is {_short(meta['env_source'])}, not a mapping")
    networks = meta.get("custom_networks", [])
    if not isinstance(networks, list) or not all(isinstance(n, str) for n in networks):
        raise bad(f"custom_networks is {_short(networks)}, not a list of names")
    config = meta["config"]
    if not isinstance(config, dict):
        raise bad(f"config is {_short(config)}, not a mapping")
    spec = get_spec(algo)
    try:
        build_config(spec.config, config)
    except ConfigError as error:
        raise bad(f"config: {error}") from None
    if kind == "checkpoint":
        _check_checkpoint_meta(meta, bad)


def _check_checkpoint_meta(meta: Mapping[str, Any], bad: Any) -> None:
    """The parts of a training checkpoint's meta that only :func:`pgrl.train.resume` reads."""
    import dataclasses

    from pgrl.errors import ConfigError
    from pgrl.run_state import RunSpec, is_timeout

    run = meta["run"]
    if not isinstance(run, dict):
        raise bad(f"run is {_short(run)}, not a mapping")
    fields = {f.name: f for f in dataclasses.fields(RunSpec)}
    unknown = sorted(set(run) - set(fields))
    if unknown:
        raise bad(
            f"run has unknown field(s) {', '.join(map(str, unknown))}; known: {', '.join(fields)}"
        )
    absent = [
        name
        for name, f in fields.items()
        if name not in run
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING
    ]
    if absent:
        raise bad(f"run lacks {', '.join(absent)}")
    for name, value in run.items():
        if name == "vectorization":
            if not isinstance(value, str):
                raise bad(f"run.vectorization is {_short(value)}, not a string")
        elif name == "worker_timeout":
            if not is_timeout(value):
                raise bad(f"run.worker_timeout is {_short(value)}, not null or seconds > 0")
        elif not _is_count(value):
            raise bad(f"run.{name} is {_short(value)}, not an integer >= 0")
    try:
        RunSpec(**run)
    except ConfigError as error:
        raise bad(f"run: {error}") from None
    for name in ("train_seconds", "eval_seconds"):
        value = meta[name]
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or value < 0
        ):
            raise bad(f"{name} is {_short(value)}, not a number of seconds >= 0")
    optimizers = meta["optimizers"]
    if not isinstance(optimizers, dict) or not all(
        isinstance(groups, list) and all(isinstance(g, dict) for g in groups)
        for groups in optimizers.values()
    ):
        raise bad(f"optimizers is {_short(optimizers)}, not a mapping of parameter groups")
    if not isinstance(meta["rng"], dict):
        raise bad(f"rng is {_short(meta['rng'])}, not a mapping")
    if not isinstance(meta["history"], list) or not all(
        isinstance(row, dict) for row in meta["history"]
    ):
        raise bad("history is not a list of metric rows")
    loop = meta["loop"]
    if not isinstance(loop, dict):
        raise bad(f"loop is {_short(loop)}, not a mapping")
    for name, optional in (
        ("next_log", False),
        ("next_eval", True),
        ("next_checkpoint", True),
        ("boundary", False),
        ("count", False),
    ):
        value = loop.get(name)
        if not (_is_count(value) or (optional and value is None and name in loop)):
            raise bad(f"loop.{name} is {_short(value)}, not an integer >= 0")
    returns = loop.get("recent_returns")
    if not isinstance(returns, list) or not all(
        isinstance(r, (int, float)) and not isinstance(r, bool) for r in returns
    ):
        raise bad(f"loop.recent_returns is {_short(returns)}, not a list of numbers")


def _short(value: Any, limit: int = 60) -> str:
    """``repr(value)`` cut to one short line (a crafted value may be megabytes long)."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[: limit - 3]}..."


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


def replace_atomically(path: Path, data: bytes) -> None:
    """Make ``path`` hold ``data``: written to a fsynced temporary file beside it, then renamed
    over it, so that ``path`` is always the old file or the new one, whole.

    The temporary file ``.<name>.tmp-<pid>-<random>`` is created exclusively, never through a
    symlink, and removed on any failure. A link at ``path`` is replaced, never followed.

    Raises:
        OSError: as the system raised it (the caller words it); ``path`` is untouched.
    """
    # The temporary file must be in the target's directory: os.replace is atomic only within
    # one filesystem. The pid and random suffix keep concurrent writers from colliding.
    temp_path = path.parent / f".{path.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)
    descriptor = -1
    try:
        descriptor = os.open(temp_path, flags, 0o644)
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
    except BaseException:
        # Cleanup errors are suppressed: the original error is the one the user must see.
        if descriptor >= 0:
            with contextlib.suppress(OSError):
                os.close(descriptor)
        with contextlib.suppress(OSError):  # never created, or already gone
            os.unlink(temp_path)
        raise


def _write_atomically(path: Path, data: bytes) -> None:
    """Write a checkpoint with :func:`replace_atomically`; a failure is one line that says
    whether the previous checkpoint is kept."""
    try:
        replace_atomically(path, data)
    except OSError as error:
        kept = "the previous checkpoint is kept" if path.exists() else "nothing was written"
        raise CheckpointError(
            f"could not save checkpoint {path}: {_reason(error)}; {kept}"
        ) from error
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
