"""Serialization of a group's quantized network (the MODEL unit) and of embeddings.

MODEL payload (little-endian; uleb = LEB128):

    u8     flags: bit 0 residual (integers are differences from the previous group's),
                  bit 1 an embedding model follows the coding groups,
                  bit 2 the embeddings are predicted in time: FRAME i carries its
                  embedding minus frame i - 1's (frame 0 of the group: itself),
                  bit 3 weight coding version 2 (below; clear in streams written before)
    uleb   frames in the group
    f32    input step of every layer (L values, layer order of InrNet.layers)
    f32    weight step base of every layer        } full groups only: residual groups
    f32    bias step of every layer               } reuse the previous group's steps
    uleb   number of coding groups, then each:  [prior] u8 model kind | uleb n | params |
                                                uleb n | data
    [u8 model kind | uleb n | params]             the embedding model (FRAME units use it)

Coding groups (both sides derive them from the layer shapes): every weight tensor of at
least 256 values alone, all smaller weight tensors together, all biases together, all
per-channel step exponents together (full groups only). Each group is coded with the
cheaper of nvc.codec.entropy's adaptive categorical model (no table sent) and its
discrete Laplace model (mean and scale sent), so the coder is never worse than the
Laplace rate proxy the network was trained with.

Weight coding version 2 (flag bit 3) codes every weight tensor conditionally on a prior both
sides know: the network's initial weights are drawn from `prior(layer, shape)`, a
pseudo-random unit-variance uniform tensor (splitmix64 of the value's index, exact integer
and float64 operations only, so every machine draws the same values), and training moves
them only so far (on tree.avi at 1 CPU-s per frame the coded integers correlate 0.85-0.99
with their prior). In v2 the step exponents' group comes first and every single-tensor
group of a full group starts with its [prior] field: u8 0 (the integers as they are) or
u8 1 and a float32 gain g, the integers being sent as w - clip(rint(g * P / step_c)), P the
layer's prior tensor and step_c its output channel's weight step; the encoder takes
whichever codes smaller. Residual groups have no [prior] fields.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, replace

import numpy as np

from nvc.bitstream import decode_uleb128, encode_uleb128
from nvc.bitstream.leb128 import Truncated
from nvc.codec.entropy import CategoricalWeightModel, ParametricWeightModel
from nvc.codec.inr.quant import INT_MAX, steps_from_code
from nvc.errors import BitstreamError, CodecError, NvcError

_F32 = struct.Struct("<f")
SMALL = 256  # weight tensors below this many values share one coding group
V2 = 8  # MODEL flag: weight coding version 2 (step exponents first, prior-predicted tensors)
FLAGS = 15  # every flag bit a decoder knows
# splitmix64 (Steele, Lea and Flood, "Fast splittable pseudorandom number generators", 2014)
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_MIX1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX2 = np.uint64(0x94D049BB133111EB)
_PRIOR_SEED = 0x6E7663  # layer i's counters start at (_PRIOR_SEED + i) * 2^32
_PRIOR_SPREAD = np.float64(12.0) ** 0.5  # uniform on [-sqrt(3), sqrt(3)): unit variance
_PRIOR_CHUNK = 1 << 18  # values drawn at a time
# Model kinds: adaptive categorical, discrete Laplace, discrete Gaussian, empirical categorical.
_MODELS: dict[int, CategoricalWeightModel | ParametricWeightModel] = {
    0: CategoricalWeightModel("adaptive"),
    1: ParametricWeightModel("laplace"),
    2: ParametricWeightModel("gaussian"),
    3: CategoricalWeightModel("empirical"),
}


@dataclass(frozen=True, eq=False)
class LayerCode:
    """One QConv as coded: integers and float32 steps."""

    a_step: np.float32  # input step
    w_base: np.float32  # weight step base (the largest channel step)
    w_k: np.ndarray  # per-channel step exponents (int64, <= 0); one 0 for per-tensor steps
    w_ints: np.ndarray  # integer weights, the weight's shape (int64)
    b_step: np.float32  # bias step
    b_ints: np.ndarray  # integer biases (int64)


@dataclass(frozen=True, eq=False)
class GroupCode:
    """A group's network as coded, plus the model its embeddings are coded with."""

    frames: int  # frames in the group
    layers: list[LayerCode]
    residual: bool = False  # integers sent as differences from the previous group
    embed_model: tuple[int, object] | None = None  # (model kind, params) for FRAME payloads
    temporal: bool = False  # FRAME payloads hold embedding differences from the previous frame
    # encoder only: may weight tensors be predicted from their prior (v2)? (False spends more
    # bits on a network that barely left its prior, for rate control)
    predict: bool = True


@dataclass(frozen=True)
class LayerShape:
    weight: tuple[int, ...]  # weight tensor shape
    steps: int  # number of weight steps (channels, or 1)


def _put(out: bytearray, blob: bytes) -> None:
    out += encode_uleb128(len(blob)) + blob


def prior(layer: int, shape: tuple[int, ...]) -> np.ndarray:
    """Layer `layer`'s prior weights: float64, unit variance, uniform, C order.

    Value j is splitmix64 of the counter ((seed + layer) 2^32 + j + 1) * golden, its top 53 bits a
    uniform in [0, 1): integer ops and exactly rounded float64 ops only (in chunks, so the
    temporaries stay small whatever the layer's size).
    """
    n = int(np.prod(shape))
    out = np.empty(n, dtype=np.float64)
    seed = np.uint64((_PRIOR_SEED + layer) << 32)  # layers' counters never overlap
    for start in range(0, n, _PRIOR_CHUNK):
        stop = min(n, start + _PRIOR_CHUNK)
        with np.errstate(over="ignore"):
            z = (np.arange(start + 1, stop + 1, dtype=np.uint64) + seed) * _GOLDEN
            z ^= z >> np.uint64(30)
            z *= _MIX1
            z ^= z >> np.uint64(27)
            z *= _MIX2
            z ^= z >> np.uint64(31)
        u = (z >> np.uint64(11)).astype(np.float64) * np.float64(2.0**-53)
        out[start:stop] = (u - 0.5) * _PRIOR_SPREAD
    return out.reshape(shape)


def _channel_steps(layer: LayerCode) -> np.ndarray:
    """float64 weight step of every output channel."""
    steps = steps_from_code(layer.w_base, layer.w_k).astype(np.float64)
    return np.broadcast_to(steps, (layer.w_ints.shape[0],)) if steps.size == 1 else steps


def _prediction(p: np.ndarray, gain: np.float32, steps: np.ndarray) -> np.ndarray:
    """clip(rint(gain * P / step_c)): the integers the prior predicts (exact float64 ops)."""
    shape = (-1,) + (1,) * (p.ndim - 1)
    q = np.rint(np.float64(gain) * p / steps.reshape(shape))
    return np.clip(q, -INT_MAX, INT_MAX).astype(np.int64)


def prior_gain(ints: np.ndarray, p: np.ndarray, steps: np.ndarray) -> np.float32:
    """Least-squares gain g of ints ~ g * P / step_c (0 when P has no weight)."""
    shape = (-1,) + (1,) * (p.ndim - 1)
    x = p / steps.reshape(shape)
    den = float((x * x).sum())
    g = float((ints * x).sum()) / den if den > 0 else 0.0
    return np.float32(g) if np.isfinite(g) and abs(g) < 1e30 else np.float32(0.0)


def _code_group(values: np.ndarray) -> tuple[int, bytes, bytes]:
    """(kind, params, data) of the cheapest model for these integers."""
    best: tuple[int, bytes, bytes] | None = None
    for kind in (0, 1):
        model = _MODELS[kind]
        try:
            params = model.fit(values)
        except CodecError:  # a range too wide for a categorical model
            continue
        data = model.compress(values, params)  # type: ignore[arg-type]
        cand = (kind, params.to_bytes(), data)
        if best is None or len(cand[1]) + len(cand[2]) < len(best[1]) + len(best[2]):
            best = cand
    if best is None:
        raise CodecError("no entropy model can code these values")
    return best


def _groups(
    shapes: list[LayerShape], residual: bool, v2: bool = True
) -> list[list[tuple[int, str]]]:
    """Coding groups as lists of (layer index, "w" | "b" | "k"); v2 puts "k" first."""
    big = [[(i, "w")] for i, s in enumerate(shapes) if int(np.prod(s.weight)) >= SMALL]
    small = [(i, "w") for i, s in enumerate(shapes) if int(np.prod(s.weight)) < SMALL]
    groups = big + [small, [(i, "b") for i in range(len(shapes))]]
    if not residual:
        k = [(i, "k") for i in range(len(shapes))]
        groups = [k, *groups] if v2 else [*groups, k]
    return [g for g in groups if g]


def _predicted_group(group: list[tuple[int, str]], residual: bool) -> bool:
    """Whether a v2 coding group carries the [prior] field."""
    return not residual and len(group) == 1 and group[0][1] == "w"


def _array(layer: LayerCode, part: str) -> np.ndarray:
    return {"w": layer.w_ints, "b": layer.b_ints, "k": layer.w_k}[part]


def encode_group(code: GroupCode, ref: GroupCode | None = None) -> bytes:
    """The MODEL payload of a group; residual groups need the previous group `ref`."""
    if code.residual and ref is None:
        raise NvcError("a residual group needs its reference group")
    layers = code.layers
    if code.residual and ref is not None:
        layers = [
            replace(a, w_ints=a.w_ints - b.w_ints, b_ints=a.b_ints - b.b_ints)
            for a, b in zip(code.layers, ref.layers, strict=True)
        ]
    out = bytearray(
        [int(code.residual) | (2 if code.embed_model else 0) | (4 if code.temporal else 0) | V2]
    )
    out += encode_uleb128(code.frames)
    for layer in layers:
        out += _F32.pack(layer.a_step)
    if not code.residual:
        for layer in layers:
            out += _F32.pack(layer.w_base)
        for layer in layers:
            out += _F32.pack(layer.b_step)
    shapes = [LayerShape(tuple(x.w_ints.shape), x.w_k.size) for x in layers]
    groups = _groups(shapes, code.residual)
    out += encode_uleb128(len(groups))
    for group in groups:
        values = np.concatenate([_array(layers[i], p).reshape(-1) for i, p in group])
        kind, params, data = _code_group(values)
        if _predicted_group(group, code.residual):  # the [prior] field
            head, best = b"\x00", (kind, params, data)
            i = group[0][0]
            if code.predict:
                p, steps = prior(i, layers[i].w_ints.shape), _channel_steps(layers[i])
                gain = prior_gain(layers[i].w_ints, p, steps)
                res = layers[i].w_ints - _prediction(p, gain, steps)
                cand = _code_group(res.reshape(-1))
                if gain != 0 and 5 + len(cand[1]) + len(cand[2]) < 1 + len(params) + len(data):
                    head, best = b"\x01" + _F32.pack(gain), cand
            out += head
            kind, params, data = best
        out.append(kind)
        _put(out, params)
        _put(out, data)
    if code.embed_model:
        kind, embed_params = code.embed_model
        out.append(kind)
        _put(out, embed_params.to_bytes())  # type: ignore[attr-defined]
    return bytes(out)


class Cursor:
    """Reads uleb128 fields and byte runs of one payload; running out is a BitstreamError
    naming the payload (`name`, e.g. "inr MODEL unit") and its fields (`field`)."""

    def __init__(self, data: bytes, name: str = "inr MODEL unit", field: str = "inr field"):
        self.data, self.pos = data, 0
        self.name, self.field = name, field

    def uleb(self, limit: int = 1 << 31) -> int:
        try:
            value, self.pos = decode_uleb128(self.data, self.pos, limit=limit, what=self.field)
        except Truncated:
            raise BitstreamError(f"{self.name} is truncated") from None
        return value

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise BitstreamError(f"{self.name} is truncated")
        blob = self.data[self.pos : self.pos + n]
        self.pos += n
        return blob

    def f32(self) -> np.float32:
        return np.float32(_F32.unpack(self.take(4))[0])

    def blob(self) -> bytes:
        return self.take(self.uleb())


def _model(kind: int) -> CategoricalWeightModel | ParametricWeightModel:
    if kind not in _MODELS:
        raise BitstreamError(f"inr MODEL unit uses unknown entropy model {kind}")
    return _MODELS[kind]


def decode_group(data: bytes, shapes: list[LayerShape], ref: GroupCode | None) -> GroupCode:
    """Inverse of encode_group. A residual group without `ref` is a BitstreamError."""
    try:
        return _decode_group(data, shapes, ref)
    except NvcError as e:
        if isinstance(e, BitstreamError):
            raise
        raise BitstreamError(f"inr MODEL unit does not decode: {e}") from None


def _decode_group(data: bytes, shapes: list[LayerShape], ref: GroupCode | None) -> GroupCode:
    cur = Cursor(data)
    flags = cur.take(1)[0]
    residual, v2 = bool(flags & 1), bool(flags & V2)
    if flags & ~FLAGS or (flags & 4 and not flags & 2):
        raise BitstreamError("inr MODEL unit has unknown flags")
    if residual and ref is None:
        raise BitstreamError("inr residual group without its reference (start at a RAP)")
    frames = cur.uleb()
    n = len(shapes)
    a_steps = [cur.f32() for _ in range(n)]
    if residual and ref is not None:  # (a residual without ref was refused above)
        w_base = [x.w_base for x in ref.layers]
        b_step = [x.b_step for x in ref.layers]
    else:
        w_base = [cur.f32() for _ in range(n)]
        b_step = [cur.f32() for _ in range(n)]
    arrays: dict[tuple[int, str], np.ndarray] = {}
    groups = _groups(shapes, residual, v2)
    if cur.uleb() != len(groups):
        raise BitstreamError("inr MODEL unit has the wrong number of coding groups")
    sizes = {
        "w": lambda i: int(np.prod(shapes[i].weight)),
        "b": lambda i: shapes[i].weight[0],
        "k": lambda i: shapes[i].steps,
    }
    for group in groups:
        gain = None
        if v2 and _predicted_group(group, residual):
            mode = cur.take(1)[0]
            if mode > 1:
                raise BitstreamError(f"inr MODEL unit has unknown weight prior mode {mode}")
            if mode == 1:
                gain = cur.f32()
                if not np.isfinite(gain):
                    raise BitstreamError("inr MODEL unit has a non-finite prior gain")
        model = _model(cur.take(1)[0])
        params = model.params_from_bytes(cur.blob())
        counts = [sizes[p](i) for i, p in group]
        values = model.decompress(cur.blob(), params, sum(counts))  # type: ignore[arg-type]
        if gain is not None:
            i = group[0][0]
            with np.errstate(all="ignore"):  # damaged steps are refused just below
                steps = steps_from_code(w_base[i], arrays[(i, "k")]).astype(np.float64)
            if not np.all(np.isfinite(steps) & (steps > 0)):
                raise BitstreamError("inr MODEL unit has invalid steps")
            steps = np.broadcast_to(steps, (shapes[i].weight[0],)) if steps.size == 1 else steps
            values = values + _prediction(prior(i, shapes[i].weight), gain, steps).reshape(-1)
        for (i, p), part in zip(group, np.split(values, np.cumsum(counts)[:-1]), strict=True):
            arrays[(i, p)] = part
    embed_model = None
    if flags & 2:
        kind = cur.take(1)[0]
        embed_model = (kind, _model(kind).params_from_bytes(cur.blob()))
    if cur.pos != len(data):
        raise BitstreamError("inr MODEL unit has trailing bytes")
    layers = []
    for i, s in enumerate(shapes):
        w = arrays[(i, "w")].reshape(s.weight)
        b = arrays[(i, "b")]
        k = ref.layers[i].w_k if residual and ref else arrays[(i, "k")]
        if residual and ref:
            w, b = w + ref.layers[i].w_ints, b + ref.layers[i].b_ints
        layers.append(LayerCode(a_steps[i], w_base[i], k, w, b_step[i], b))
    return GroupCode(frames, layers, residual, embed_model, bool(flags & 4))


def fit_embedding_model(ints: np.ndarray) -> tuple[int, object]:
    """The cheapest model for a group's embedding integers (all frames)."""
    best: tuple[int, object] | None = None
    best_bits = 0.0
    for kind in (1, 2, 3):
        model = _MODELS[kind]
        params = model.fit(ints)
        bits = model.cost_bits(ints, params) + 8 * len(params.to_bytes())  # type: ignore[arg-type]
        if best is None or bits < best_bits:
            best, best_bits = (kind, params), bits
    if best is None:
        raise CodecError("no entropy model for the embedding")
    return best


def embedding_bits(ints: np.ndarray, embed_model: tuple[int, object]) -> float:
    """Estimated code length of integers under an embedding model, its table included."""
    kind, params = embed_model
    model = _MODELS[kind]
    return model.cost_bits(ints, params) + 8 * len(params.to_bytes())  # type: ignore[arg-type,attr-defined]


def temporal_residuals(ints: np.ndarray) -> np.ndarray:
    """(N, ...) embeddings -> what temporally predicted FRAME units carry: frame 0 as it
    is, every later frame minus the previous one."""
    out = ints.copy()
    out[1:] -= ints[:-1]
    return out


def encode_embedding(ints: np.ndarray, embed_model: tuple[int, object]) -> bytes:
    kind, params = embed_model
    return _MODELS[kind].compress(ints, params)  # type: ignore[arg-type]


def decode_embedding(data: bytes, embed_model: tuple[int, object], count: int) -> np.ndarray:
    kind, params = embed_model
    try:
        return _MODELS[kind].decompress(data, params, count)  # type: ignore[arg-type]
    except NvcError as e:
        raise BitstreamError(f"inr FRAME unit does not decode: {e}") from None
