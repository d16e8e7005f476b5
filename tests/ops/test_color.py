"""MATLAB rgb2ycbcr luminance, checked on hand-computed values and the reference mean of Y."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from mgsr.ops.color import rgb_to_y, rgb_uint8_to_y


def test_hand_computed_values():
    rgb = np.array([[[0, 0, 0], [255, 255, 255], [255, 0, 0], [10, 200, 30]]], dtype=np.uint8)
    # 16 + (65.481*10 + 128.553*200 + 24.966*30)/255 = 16 + 27,114.39/255 = 122.331 -> 122
    assert rgb_uint8_to_y(rgb).tolist() == [[16.0, 235.0, 81.0, 122.0]]
    y = rgb_to_y(torch.tensor(rgb[0].T[:, :, None] / 255.0).unsqueeze(0))
    torch.testing.assert_close(
        y[0, 0, :, 0], torch.tensor([16.0, 235.0, 81.481, 122.331], dtype=torch.float64), atol=1e-3, rtol=0
    )


@pytest.mark.parametrize("name", ["astronaut", "coffee", "chelsea"])
def test_mean_y_matches_reference(reference, name):
    expected = json.loads((reference / "images" / "expected_shared.json").read_text())[name]["y_mean"]
    rgb = np.asarray(Image.open(reference / "images" / f"{name}.png").convert("RGB"))
    assert rgb_uint8_to_y(rgb).mean() == pytest.approx(expected, abs=1e-6)
