"""pgrl.encoders: each encoder undoes flatten_obs (layout, scaling, slices) and lets
gradients reach its parameters."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces as S
from torch import nn
from torch.testing import assert_close

from pgrl.encoders import (
    FlatEncoder,
    ImageEncoder,
    MultiEncoder,
    image_layout,
    make_encoder,
    needs_encoder,
    normalizable_mask,
)
from pgrl.spaces import flatten_obs, space_info


@pytest.mark.parametrize(
    ("shape", "layout"),
    [
        ((84, 84, 3), (3, 84, 84, True)),
        ((12, 12, 1), (1, 12, 12, True)),
        ((64, 64, 4), (4, 64, 64, True)),
        ((3, 84, 84), (3, 84, 84, False)),
        ((4, 84, 84), (4, 84, 84, False)),
        ((1, 12, 12), (1, 12, 12, False)),
        ((3, 3, 3), (3, 3, 3, False)),  # ambiguous: channels first
        ((10, 12, 7), (10, 12, 7, False)),
    ],
)
def test_image_layout_detects_channels_last(shape: tuple, layout: tuple) -> None:
    assert image_layout(shape) == layout


def test_large_images_get_the_nature_cnn() -> None:
    encoder = make_encoder(S.Box(0, 255, (84, 84, 4), np.uint8))
    assert isinstance(encoder, ImageEncoder) and encoder.out_dim == 512
    convs = [m for m in encoder.convs if isinstance(m, nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size, c.stride) for c in convs] == [
        (32, (8, 8), (4, 4)),
        (64, (4, 4), (2, 2)),
        (64, (3, 3), (1, 1)),
    ]
    # 84 → 20 → 9 → 7: 64 x 7 x 7 features into the linear layer, as in Mnih et al. (2015)
    assert encoder.linear[0].in_features == 64 * 7 * 7


@pytest.mark.parametrize("side", [1, 3, 12, 35, 36])
def test_any_image_size_from_one_pixel_fits_a_conv_stack(side: int) -> None:
    space = S.Box(0, 255, (side, side, 3), np.uint8)
    encoder = make_encoder(space)
    assert encoder.out_dim == (512 if side >= 36 else 256)
    out = encoder(torch.rand(5, side * side * 3) * 255)
    assert out.shape == (5, encoder.out_dim) and torch.isfinite(out).all()


def test_small_image_stack_keeps_its_pixels() -> None:
    encoder = ImageEncoder((12, 12, 1))
    # conv 3x3/1 pad 1 keeps 12x12, conv 3x3/2 pad 1 halves it: 32 x 6 x 6 into the linear
    assert encoder.linear[0].in_features == 32 * 6 * 6


def test_hwc_and_chw_layouts_read_the_same_image() -> None:
    hwc, chw = ImageEncoder((6, 5, 3)), ImageEncoder((3, 6, 5))
    chw.load_state_dict(hwc.state_dict())
    image = torch.randint(0, 256, (2, 6, 5, 3)).float()  # (B, H, W, C)
    assert_close(hwc(image.reshape(2, -1)), chw(image.permute(0, 3, 1, 2).reshape(2, -1)))


def test_image_encoder_scales_pixels_by_1_over_255() -> None:
    encoder = ImageEncoder((5, 5, 1))
    image = torch.randint(0, 256, (3, 5, 5, 1)).float()
    by_hand = encoder.linear(encoder.convs(image.permute(0, 3, 1, 2) / 255.0))
    assert_close(encoder(image.reshape(3, -1)), by_hand)


def test_image_encoder_reads_the_flat_form_of_a_uint8_batch() -> None:
    # flatten_obs keeps 0..255 values in HWC order; the encoder undoes exactly that
    space = S.Box(0, 255, (5, 4, 3), np.uint8)
    info = space_info(space, S.Discrete(2))
    images = np.random.default_rng(0).integers(0, 256, (2, 5, 4, 3), dtype=np.uint8)
    encoder = ImageEncoder(space.shape)
    flat = torch.from_numpy(flatten_obs(info, images))
    by_hand = torch.from_numpy(images).float().permute(0, 3, 1, 2) / 255.0
    assert_close(encoder(flat), encoder.linear(encoder.convs(by_hand)))


def test_encoders_take_leading_time_and_env_dimensions() -> None:
    space = S.Dict({"image": S.Box(0, 255, (5, 5, 1), np.uint8), "x": S.Box(-1, 1, (2,))})
    encoder = make_encoder(space)
    obs = torch.rand(3, 2, S.flatdim(space))
    out = encoder(obs)
    assert out.shape == (3, 2, encoder.out_dim)
    assert_close(out[1, 0], encoder(obs[1, 0:1])[0])


def test_dict_encoder_applies_each_part_to_its_slice_in_key_order() -> None:
    # keys sort to "a" (Discrete(3), one-hot: 3 values), "b" (image 5x5x1: 25), "c" (Box 2)
    space = S.Dict(
        {"c": S.Box(-1, 1, (2,)), "a": S.Discrete(3), "b": S.Box(0, 255, (5, 5, 1), np.uint8)}
    )
    encoder = make_encoder(space)
    assert isinstance(encoder, MultiEncoder)
    assert encoder.sizes == [3, 25, 2]
    image_part = encoder.parts[1]
    assert isinstance(image_part, ImageEncoder)
    assert encoder.out_dim == 3 + image_part.out_dim + 2
    obs = torch.rand(4, 30) * 255
    out = encoder(obs)
    assert_close(out[:, :3], obs[:, :3])  # the one-hot passes through
    assert_close(out[:, 3:-2], image_part(obs[:, 3:28]))
    assert_close(out[:, -2:], obs[:, 28:])


def test_gradients_reach_every_image_part() -> None:
    space = S.Tuple((S.Box(0, 255, (6, 6, 1), np.uint8), S.Box(0, 255, (1, 5, 5), np.uint8)))
    encoder = make_encoder(space)
    encoder(torch.rand(2, 36 + 25) * 255).sum().backward()
    for name, p in encoder.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


@pytest.mark.parametrize(
    "space",
    [
        S.Box(-1, 1, (3,)),
        S.Box(-1, 1, (2, 3)),
        S.Box(0, 1, (4, 4, 3), np.float32),  # a float "image" is flattened (no CNN)
        S.Box(0, 255, (4, 4), np.uint8),  # 2-D: not an image
        S.Discrete(4),
        S.MultiDiscrete([2, 3]),
        S.MultiBinary(5),
        S.Dict({"a": S.Discrete(2), "b": S.Box(-1, 1, (2,))}),
    ],
    ids=str,
)
def test_spaces_without_images_need_no_encoder(space: gym.Space) -> None:
    assert not needs_encoder(space)
    encoder = make_encoder(space)
    assert isinstance(encoder, FlatEncoder) and encoder.out_dim == S.flatdim(space)
    assert not list(encoder.parameters())


def test_normalizable_mask_marks_non_image_box_entries() -> None:
    space = S.Dict(
        {
            "a": S.Discrete(2),
            "b": S.Box(0, 255, (2, 2, 1), np.uint8),
            "c": S.Box(-1, 1, (3,)),
            "d": S.MultiBinary(1),
        }
    )
    assert normalizable_mask(space).tolist() == [False] * 2 + [False] * 4 + [True] * 3 + [False]
