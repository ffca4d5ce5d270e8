"""Shared fixtures: one thread (the machine is shared), small random-weight models."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from nvc.codec.conditional import weights as wt
from nvc.codec.conditional.model import VARIANTS, FMModel, ModelConfig

# A model smaller than "realtime" (same design), so that tests run in seconds.
TINY = ModelConfig("realtime", 16, 16, 8, 8, 8, 8, 16, 1, latent_skip=True)


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def tiny_model(seed: int = 0) -> FMModel:
    torch.manual_seed(seed)
    return FMModel(TINY).eval()


@pytest.fixture(scope="session")
def weights_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights file of a tiny random model, registered for decoding in this process."""
    path = tmp_path_factory.mktemp("fm") / "tiny.pt"
    model = tiny_model(1)
    wt.save_weights(model, path)
    wt.register(wt.load_weights(path))
    return path


@pytest.fixture(scope="session")
def realtime_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A weights file of a random model of the full realtime size."""
    path = tmp_path_factory.mktemp("fm") / "realtime.pt"
    torch.manual_seed(2)
    wt.save_weights(FMModel(VARIANTS["realtime"]).eval(), path)
    wt.register(wt.load_weights(path))
    return path
