"""Data-parallel training of fm under `torchrun` (torch.distributed, DistributedDataParallel).

`torchrun --nproc_per_node N -m nvc.cli train fm ...` starts N processes with RANK,
WORLD_SIZE and LOCAL_RANK in their environment; `World.from_env` joins them into one
process group (gloo on the CPU, nccl on CUDA, each process on its own GPU). Every process
draws the same global batch from the same random generators and trains on its share of it
(samples rank, rank + N, ...); DistributedDataParallel averages the gradients, so the model,
the optimizer and every random generator are identical in all processes after every step,
and the checkpoint that rank 0 writes resumes all of them exactly. Without those variables
(a plain `nvc train fm`) the world is one process and nothing is distributed.
"""

from __future__ import annotations

import datetime
import os
from dataclasses import dataclass

import torch
from torch import distributed as dist

from nvc.errors import NvcError


@dataclass(frozen=True)
class World:
    """The processes of one training run."""

    rank: int = 0  # this process
    size: int = 1  # all processes
    local_rank: int = 0  # this process on its machine (its GPU)

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @classmethod
    def from_env(cls, device: str) -> World:
        """Join the process group torchrun set up (or a world of one)."""
        size = int(os.environ.get("WORLD_SIZE", "1"))
        if size <= 1:
            return cls()
        rank = int(os.environ.get("RANK", "0"))
        local = int(os.environ.get("LOCAL_RANK", "0"))
        cuda = device.startswith("cuda")
        if cuda:
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            dist.init_process_group(
                "nccl" if cuda else "gloo", timeout=datetime.timedelta(minutes=10)
            )
        if dist.get_world_size() != size:
            raise NvcError("torch.distributed world size differs from WORLD_SIZE")
        return cls(rank, size, local)

    def device(self, device: str) -> str:
        """This process's device: cuda:LOCAL_RANK under torchrun with --device cuda."""
        return f"cuda:{self.local_rank}" if self.distributed and device == "cuda" else device

    def share(self, batch: int) -> slice:
        """This process's samples of a global batch."""
        if batch % self.size:
            raise NvcError(f"--batch {batch} does not divide among {self.size} processes")
        return slice(self.rank, batch, self.size)

    def sum(self, value: float) -> float:
        """The sum of a number over all processes."""
        if not self.distributed:
            return value
        t = torch.tensor([value], dtype=torch.float64)
        if dist.get_backend() == "nccl":
            t = t.cuda()
        dist.all_reduce(t)
        return float(t.cpu())

    def any(self, flag: bool) -> bool:
        """True in every process when it is true in one (rank 0's clock decides stops)."""
        return self.sum(1.0 if flag else 0.0) > 0

    def close(self) -> None:
        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()
