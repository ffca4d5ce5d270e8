"""The inr tests run torch on one thread: their pictures are tiny, and on a busy 2-core
machine a second OpenMP thread makes every small op wait for a time slice."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
