"""The decoder's state and its exact path, shared by the decoder and the encoder.

The encoder reconstructs every group by decoding its own MODEL and FRAME payloads with
this class, so the PSNR it reports is the PSNR of what `nvc decode` writes.
"""

from __future__ import annotations

import numpy as np
import torch

from nvc.codec.inr.blocks import positional_encoding_exact
from nvc.codec.inr.config import ModelConfig
from nvc.codec.inr.frames import Geometry, render_planes
from nvc.codec.inr.grid import grid_slices
from nvc.codec.inr.gridcode import decode_grids, split_payload
from nvc.codec.inr.model import InrNet
from nvc.codec.inr.quant import dequantize, steps_from_code
from nvc.codec.inr.weights import GroupCode, LayerShape, decode_embedding, decode_group
from nvc.errors import BitstreamError


class Renderer:
    """Holds the current group's exact network; `load` a MODEL, then `render` frames."""

    def __init__(self, cfg: ModelConfig, geo: Geometry) -> None:
        self.cfg, self.geo = cfg, geo
        self.grid = cfg.grid(geo.width, geo.height)
        with torch.device("meta"):  # float parameters are never used: no memory for them
            self.net = InrNet(cfg, self.grid)
        self.layers = self.net.layers
        self.shapes = [LayerShape(tuple(x.weight.shape), x.w_logstep.numel()) for x in self.layers]
        self.group: GroupCode | None = None
        self.previous: tuple[int, np.ndarray] | None = None  # (index, embedding) last rendered

    def load(self, payload: bytes) -> GroupCode:
        """Decode a MODEL payload (a residual one needs the previous group loaded)."""
        grids = None
        if self.net.grids is not None:
            section, payload = split_payload(payload)
            levels = self.net.grids.levels
            grids = decode_grids(section, levels, self.net.grids.max_slices)
        code = decode_group(payload, self.shapes, self.group)
        if code.frames < 1 or code.frames > self.cfg.group_size:
            raise BitstreamError(
                f"inr group of {code.frames} frames (group size {self.cfg.group_size})"
            )
        if (self.cfg.stem == "embed") != (code.embed_model is not None):
            raise BitstreamError("inr MODEL unit does not match the stream's stem")
        for layer, c in zip(self.layers, code.layers, strict=True):
            steps = steps_from_code(c.w_base, c.w_k)
            if not np.all(np.isfinite(steps)) or not np.isfinite(c.a_step) or c.a_step <= 0:
                raise BitstreamError("inr MODEL unit has invalid steps")
            bias = dequantize(c.b_ints, np.array([c.b_step], dtype=np.float32))
            layer.load_exact(c.w_ints, steps, c.a_step, bias)
        if self.net.grids is not None and grids is not None:
            if grids[0][1].shape[0] != grid_slices(self.cfg, code.frames):
                raise BitstreamError("inr grid section does not match the group's frame count")
            self.net.grids.load_exact(grids)
        self.group = code
        self.previous = None
        return code

    def render(self, index: int, payload: bytes) -> tuple[np.ndarray, ...]:
        """The planes of frame `index` of the loaded group; payload: its FRAME unit's."""
        if self.group is None:
            raise BitstreamError("inr FRAME unit before any MODEL unit")
        if not 0 <= index < self.group.frames:
            raise BitstreamError(f"inr frame {index} is outside its group of {self.group.frames}")
        t = (index + 0.5) / self.cfg.group_size
        pe = None
        if self.cfg.stem == "pe" or self.cfg.modulation:
            pe = positional_encoding_exact(t, self.cfg.pe_levels)
        emb = None
        if self.cfg.stem == "embed":
            if self.group.embed_model is None:
                raise BitstreamError("inr group has no embedding model for its frames")
            h0, w0 = self.grid
            ints = decode_embedding(payload, self.group.embed_model, self.cfg.embed_dim * h0 * w0)
            if self.group.temporal and index > 0:
                if self.previous is None or self.previous[0] != index - 1:
                    raise BitstreamError(
                        f"inr frame {index} of its group needs frame {index - 1} first "
                        "(its embedding is predicted from it)"
                    )
                ints = ints + self.previous[1]
            self.previous = (index, ints)
            stem = self.net.stem
            if ints.size and (ints.min() < stem.lo or ints.max() > stem.hi):
                raise BitstreamError("inr embedding value out of range")
            emb = torch.from_numpy(ints.astype(np.float32).reshape(1, self.cfg.embed_dim, h0, w0))
            emb = emb.contiguous(memory_format=torch.channels_last)
        elif payload:
            raise BitstreamError("inr FRAME unit of a NeRV-style stream must be empty")
        with torch.inference_mode():
            ts = torch.tensor([t], dtype=torch.float64)
            out = self.net(pe, emb, exact=True, t=ts)  # (1, 3, H', W')
        return render_planes(out, self.geo)
