"""The 3D decoder's CPU renders run with codec3d.RENDER_THREADS torch threads (two threads
were 40-120x slower than one on the loaded 2-core machine), and the caller's count comes
back afterwards."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nvc.codec.gaussian import codec3d
from nvc.codec.gaussian.fit3d import Gaussians3D
from nvc.media.multiview import Camera


def _scene(n: int = 40) -> tuple[Gaussians3D, Camera]:
    gen = torch.Generator().manual_seed(3)
    means = torch.rand(n, 3, generator=gen) - 0.5
    means[:, 2] += 3.0  # in front of the camera
    g = Gaussians3D(
        means=means,
        log_scales=torch.full((n, 3), -2.5),
        quats=torch.tensor([[1.0, 0.0, 0.0, 0.0]]).repeat(n, 1),
        opacity_logits=torch.full((n,), 1.0),
        sh0=torch.randn(n, 3, generator=gen),
    )
    camera = Camera("cam", 48, 32, 40.0, 40.0, 24.0, 16.0, np.eye(3), np.zeros(3))
    return g, camera


def test_cpu_render_uses_render_threads_and_restores_the_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    g, camera = _scene()
    seen: list[int] = []
    real = codec3d.render

    def counting_render(*args: object, **kwargs: object) -> object:
        seen.append(torch.get_num_threads())
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(codec3d, "render", counting_render)
    monkeypatch.setattr(codec3d, "_use_gsplat", lambda: False)  # the CPU path everywhere
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        picture = codec3d.render_rgb(g, camera)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert codec3d.RENDER_THREADS == 1 and seen == [1]
    assert picture.shape == (32, 48, 3) and picture.dtype == np.float32
    assert picture.min() >= 0.0 and picture.max() <= 1.0 and picture.std() > 0.01
    with torch.no_grad():
        direct = g.render(camera).clamp(0, 1).numpy()
    np.testing.assert_allclose(picture, direct, atol=1e-5)
