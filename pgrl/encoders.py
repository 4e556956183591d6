"""Encoders: the first layers of a network, which undo :func:`pgrl.spaces.flatten_obs`.

Every network in pgrl reads the flat float32 observation ``(B, O)`` that storage holds. When
the observation has structure, an encoder maps it to features ``(B, out_dim)`` that the
network's MLP head takes in place of the observation:

* a 1-D Box, or any Box that is not an image, a MultiBinary, a Discrete (its one-hot form)
  or a MultiDiscrete (its one-hots): the flat values themselves (:class:`FlatEncoder`);
* an image, a uint8 Box of 3 dimensions: reshaped to ``(C, H, W)``, scaled by 1/255 and
  passed through a CNN (:class:`ImageEncoder`);
* a Dict or Tuple: an encoder per sub-space on its slice of the flat vector, the features
  concatenated in the order of the flat layout (:class:`MultiEncoder`).

An encoder takes any leading dimensions, like the MLPs: ``(T, N, O) → (T, N, out_dim)``.
A flat 1-D Box observation needs no encoder at all: the algorithms build their networks
without one, exactly as before encoders existed (:func:`needs_encoder`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor, nn

from pgrl.errors import EnvError

__all__ = [
    "FlatEncoder",
    "ImageEncoder",
    "MultiEncoder",
    "image_layout",
    "make_encoder",
    "needs_encoder",
    "normalizable_mask",
]

# Nature DQN (Mnih et al. 2015): three convolutions need at least 36 pixels per side
# (36 → 8 → 3 → 1 with 8x8/4, 4x4/2, 3x3/1 kernels)
NATURE_MIN_SIZE = 36


def _flat_input(x: Tensor, dim: int) -> tuple[Tensor, tuple[int, ...]]:
    """``(*lead, dim)`` → ``(B, dim)`` rows and the leading shape to restore."""
    lead = tuple(x.shape[:-1])
    if x.shape[-1] != dim:
        raise ValueError(f"expected observations with {dim} values, got shape {tuple(x.shape)}")
    return x.reshape(-1, dim), lead


class FlatEncoder(nn.Module):
    """The identity on the flat observation: ``out_dim`` = ``in_dim``. No parameters."""

    def __init__(self, in_dim: int) -> None:
        super().__init__()
        self.in_dim = self.out_dim = in_dim

    def forward(self, obs: Tensor) -> Tensor:
        return obs


def image_layout(shape: Sequence[int]) -> tuple[int, int, int, bool]:
    """``(C, H, W, channels_last)`` of an image shape, HWC or CHW.

    Channels-last when the last dimension is 1, 3 or 4 and the first is not (84x84x3 is
    HWC; 3x84x84 and 4x84x84 are CHW, and so is the ambiguous 3x3x3).

    Example:
        >>> image_layout((84, 84, 3)), image_layout((4, 84, 84))
        ((3, 84, 84, True), (4, 84, 84, False))
    """
    a, b, c = (int(v) for v in shape)
    if c in (1, 3, 4) and a not in (1, 3, 4):
        return c, a, b, True
    return a, b, c, False


def is_image(space: gym.Space[Any]) -> bool:
    """A uint8 Box of 3 dimensions (HWC or CHW)."""
    return isinstance(space, gym.spaces.Box) and space.dtype == np.uint8 and len(space.shape) == 3


def _init(layer: nn.Module) -> nn.Module:
    # orthogonal with gain √2, zero bias: OpenAI Baselines' initialisation of the Nature CNN
    assert isinstance(layer, (nn.Conv2d, nn.Linear))
    nn.init.orthogonal_(layer.weight, math.sqrt(2.0))
    assert layer.bias is not None
    nn.init.zeros_(layer.bias)
    return layer


class ImageEncoder(nn.Module):
    """A CNN on a uint8 image: ``(B, H·W·C) → (B, features)``, pixels scaled by 1/255.

    Images at least 36 pixels on each side get the Nature DQN network (Mnih et al. 2015):
    conv 32 8x8 stride 4, conv 64 4x4 stride 2, conv 64 3x3 stride 1, each with ReLU, then a
    linear layer to 512 and ReLU. Smaller images (from 1x1) get a smaller stack that keeps
    their few pixels: conv 16 3x3 stride 1 and conv 32 3x3 stride 2, both padded by 1, then a
    linear layer to 256 and ReLU (a 12x12 image: 32 x 6 x 6 = 1152 inputs to the linear layer).
    """

    def __init__(self, shape: Sequence[int]) -> None:
        super().__init__()
        channels, height, width, self.channels_last = image_layout(shape)
        self.in_dim = channels * height * width
        self.image_shape = (channels, height, width)
        if min(height, width) >= NATURE_MIN_SIZE:
            convs = [
                _init(nn.Conv2d(channels, 32, 8, stride=4)),
                nn.ReLU(),
                _init(nn.Conv2d(32, 64, 4, stride=2)),
                nn.ReLU(),
                _init(nn.Conv2d(64, 64, 3, stride=1)),
                nn.ReLU(),
            ]
            features = 512
        else:
            convs = [
                _init(nn.Conv2d(channels, 16, 3, stride=1, padding=1)),
                nn.ReLU(),
                _init(nn.Conv2d(16, 32, 3, stride=2, padding=1)),
                nn.ReLU(),
            ]
            features = 256
        self.convs = nn.Sequential(*convs, nn.Flatten())
        with torch.no_grad():
            flat = self.convs(torch.zeros(1, channels, height, width)).shape[1]
        self.linear = nn.Sequential(_init(nn.Linear(flat, features)), nn.ReLU())
        self.out_dim = features

    def forward(self, obs: Tensor) -> Tensor:
        rows, lead = _flat_input(obs, self.in_dim)
        channels, height, width = self.image_shape
        if self.channels_last:
            images = rows.reshape(-1, height, width, channels).permute(0, 3, 1, 2)
        else:
            images = rows.reshape(-1, channels, height, width)
        features = self.linear(self.convs(images * (1.0 / 255.0)))
        return features.reshape(*lead, self.out_dim)


def _out_dim(encoder: nn.Module) -> int:
    out_dim = getattr(encoder, "out_dim", None)
    assert isinstance(out_dim, int), f"{type(encoder).__name__} has no int out_dim"
    return out_dim


class MultiEncoder(nn.Module):
    """Dict or Tuple observations: each part's encoder on its slice, features concatenated."""

    def __init__(self, parts: Sequence[nn.Module], sizes: Sequence[int]) -> None:
        super().__init__()
        self.parts = nn.ModuleList(parts)
        self.sizes = [int(s) for s in sizes]
        self.in_dim = sum(self.sizes)
        self.out_dim = sum(_out_dim(p) for p in parts)

    def forward(self, obs: Tensor) -> Tensor:
        rows, lead = _flat_input(obs, self.in_dim)
        pieces = rows.split(self.sizes, dim=-1)
        features = torch.cat([part(x) for part, x in zip(self.parts, pieces, strict=True)], -1)
        return features.reshape(*lead, self.out_dim)


def _parts(space: gym.Space[Any]) -> list[gym.Space[Any]] | None:
    if isinstance(space, gym.spaces.Dict):
        return list(space.spaces.values())
    if isinstance(space, gym.spaces.Tuple):
        return list(space.spaces)
    return None


def needs_encoder(space: gym.Space[Any] | None) -> bool:
    """Whether the observation holds an image: only then do the networks need more than an
    MLP on the flat vector (one-hot parts, Dict and Tuple of vectors are already flat)."""
    if space is None:
        return False
    parts = _parts(space)
    if parts is not None:
        return any(needs_encoder(p) for p in parts)
    return is_image(space)


def make_encoder(space: gym.Space[Any]) -> nn.Module:
    """The default encoder of an observation space (see the module docstring).

    The result maps ``(*, flatdim(space))`` to ``(*, out_dim)``. A space without an image
    gives a :class:`FlatEncoder` (the identity); the algorithms then use no encoder at all.

    Example:
        >>> make_encoder(gym.spaces.Box(0, 255, (12, 12, 1), np.uint8)).out_dim
        256
        >>> make_encoder(gym.spaces.Dict({"a": gym.spaces.Discrete(3)})).out_dim
        3
    """
    parts = _parts(space)
    if parts is not None:
        if not any(needs_encoder(p) for p in parts):
            return FlatEncoder(gym.spaces.flatdim(space))
        return MultiEncoder(
            [make_encoder(p) for p in parts], [gym.spaces.flatdim(p) for p in parts]
        )
    if is_image(space):
        assert space.shape is not None
        return ImageEncoder(space.shape)
    try:
        return FlatEncoder(gym.spaces.flatdim(space))
    except (NotImplementedError, ValueError):
        raise EnvError(f"pgrl has no encoder for observations of {space}") from None


def normalizable_mask(space: gym.Space[Any]) -> np.ndarray:
    """``(flatdim,)`` bool: True where the flat observation holds a non-image Box value.

    Observation normalization (PPO's ``normalize_obs``) applies to these entries only:
    images are scaled by their encoder, one-hot and binary parts are already in [0, 1].

    Example:
        >>> space = gym.spaces.Dict({"a": gym.spaces.Discrete(2), "b": gym.spaces.Box(-1, 1, (1,))})
        >>> normalizable_mask(space).tolist()
        [False, False, True]
    """
    parts = _parts(space)
    if parts is not None:
        return np.concatenate([normalizable_mask(p) for p in parts]).astype(bool)
    value = isinstance(space, gym.spaces.Box) and not is_image(space)
    return np.full(gym.spaces.flatdim(space), value, dtype=bool)
