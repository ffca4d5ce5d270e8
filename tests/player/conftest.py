from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.player.helpers import GOP_CODEC_ID, GOP_SPEC, make_file, register_gop


@pytest.fixture(scope="package", autouse=True)
def gop_codec() -> Iterator[None]:
    """The test codec with non-RAP units, registered while tests/player runs."""
    from nvc.codec import registry

    if registry.name_of(GOP_CODEC_ID) is None:
        register_gop()
    yield
    registry.unregister(GOP_SPEC)


@pytest.fixture(scope="session")
def lossless_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """25 frames of 64x48 lossless, 25 fps (one second)."""
    return make_file(tmp_path_factory.mktemp("stream") / "clip.nvc", frames=25)


@pytest.fixture(scope="package")
def gop_file(tmp_path_factory: pytest.TempPathFactory, gop_codec: None) -> Path:
    """40 frames of 64x48 in the test codec (RAP every 5 frames), 25 fps."""
    return make_file(tmp_path_factory.mktemp("stream") / "gop.nvc", frames=40, codec="testgop")


@pytest.fixture(scope="package")
def neural_files(tmp_path_factory):
    """Small fm and inr files (inr with its fastest training: one epoch, groups of 4)."""
    import torch

    from tests.player.helpers import make_file

    torch.set_num_threads(1)
    tmp = tmp_path_factory.mktemp("neural")
    return {
        "fm": make_file(tmp / "fm.nvc", frames=16, codec="fm", options={"intra_period": 4}),
        "inr": make_file(
            tmp / "inr.nvc",
            frames=12,
            codec="inr",
            options={"preset": "realtime", "epochs": 1, "group_size": 4},
        ),
    }
