"""The `fm` codec: learned causal video coding with feature modulation (see README.md).

Sequence header codec parameters (version 4; versions 1 to 3 have the same fields: version 1
streams have no checksums, versions 1 and 2 no block-motion frames, versions 1 to 3 no DC
plane modes):

    u8 version = 4 | u8 n, n bytes variant name (utf-8) | 16 bytes of the weights' SHA-256
    | uleb128 intra period (0: only the first frame) | uleb128 refresh interval (0: never)

One FRAME unit per frame, payload:

    u8 flags (bit 0: intra, bit 1: refresh the temporal feature, bit 2: residual, bit 3:
      inter latent not sent, y = 0; bit 4: no motion sent, zero flow; bit 5 (version 3):
      block motion, with bit 3 and without bits 0 and 1; others 0)
    | u8 q (0..63)
    | [residual only: u8 q_r | shift << 6 (q_r 0..63, shift 0..3) | uleb128 n, the size
      of the main stream]
    | the main range-coder stream (nvc.codec.entropy), n bytes when a residual follows,
      with the frame's sections in order:
      intra: z, y anchors, y non-anchors, where version 4's v2 image codec writes z as a
      flag per channel, the DPCM modes of the flagged ones, the others' symbols, the
      flagged planes (dpcm.py), and before the anchors the modes of its DC planes Y, Cb,
      Cr and the DPCM-coded ones among them (left out of the anchors and non-anchors);
      inter: motion z, motion latent (without bit 4), z, y anchors, y non-anchors (without
      bit 3); a skipped frame (bits 3 and 4) has an empty main stream;
      block motion (bit 5): the block vectors (mvcoding.py), or nothing with bit 4
    | [residual only: a second range-coder stream, the rest of the payload: the residual
      codec's z, y anchors, y non-anchors, at quality q_r, laid out as for intra frames
      (version 4: z planes; DC planes only when that codec is the intra codec)]
    | u32le CRC-32 of the decoded frame (nvc.codec.integrity; parameters version 2 only:
      version 1 streams have none and decode unchecked).

The residual (inter frames only) is the difference between the picture and the inter
codec's reconstruction, times 2**shift, coded with the model's residual codec (its intra
codec when it has none); the decoder divides that codec's output by 2**shift (rounding half
up) and adds it back. The encoder sends it when it lowers lambda(q) MSE + bpp (the training
loss); it carries the quality of inter frames up with q where the inter codec's own latent
cannot (see weights/MODEL_CARD.md).

A block-motion frame (bit 5) does not run the inter networks: its prediction is the
reference motion-compensated with the decoded block vectors (mvcoding.py, subpel.py;
with bit 4, the reference itself), plus the residual; the next temporal feature is
re-derived from its picture.

Intra frames are random-access points (rap=True); inter frames, refreshes included, are not.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import torch
from torch import Tensor

from nvc.bitstream import SequenceHeader, Unit, UnitType, decode_uleb128, encode_uleb128
from nvc.codec import integrity
from nvc.codec.base import CodecSpec, StreamInfo
from nvc.codec.conditional import frames as fr
from nvc.codec.conditional import mvcoding, mvsearch, subpel
from nvc.codec.conditional import weights as wt
from nvc.codec.conditional.layers import ONE, clamp_act, fixed_round_shift
from nvc.codec.conditional.model import (
    Q_LEVELS,
    RESIDUAL_SHIFTS,
    VARIANTS,
    Contexts,
    FMModel,
    lambda_of,
)
from nvc.codec.conditional.motion import estimate_motion
from nvc.codec.entropy import SymbolReader, SymbolWriter
from nvc.errors import BitstreamError, CodecError
from nvc.media import Frame

# 4: the v2 image codec's z channels and intra DC planes may be DPCM-coded (dpcm.py); 3:
# block-motion frames (FLAG_BLOCK_MOTION); 2: FRAME payloads end with a checksum
# (nvc.codec.integrity); 1: no checksum. This decoder reads all four.
PARAMS_VERSION = 4
FLAG_INTRA = 1
FLAG_REFRESH = 2
FLAG_RESIDUAL = 4
FLAG_NO_LATENT = 8  # inter: the frame latent is not sent (no z, no y); the decoder uses y = 0
FLAG_ZERO_MOTION = 16  # inter: no motion is sent; the decoder uses a zero flow
FLAG_BLOCK_MOTION = 32  # inter (version 3): predicted by coded block vectors (mvcoding.py)
KNOWN_FLAGS = FLAG_INTRA | FLAG_REFRESH | FLAG_RESIDUAL | FLAG_NO_LATENT | FLAG_ZERO_MOTION
KNOWN_FLAGS |= FLAG_BLOCK_MOTION
# the encoder's residual q search: q -+ 6, then on in the direction that paid while it pays
RESIDUAL_Q_STEPS = (6, 12, 18, 24)
# without the search, residual trials back off after misses (_ResidualBackoff): at most
# BACKOFF_MAX frames skipped in a row, none once the prediction costs BACKOFF_JUMP times more
BACKOFF_MAX = 7
BACKOFF_JUMP = 1.5
# with the search, inter frames are coded at q - INTER_Q_OFFSET (at least 0): the intra
# frame every later frame predicts from is worth more bits than each of them (the idea of
# x264's ipratio); measured on training footage (box.mp4, vtest.avi frames 300-599, 8
# frames, q 16/32/48, realtime2 with block motion): BD-rate -4.8% / -4.4% at 6, -5.8% /
# -6.9% at 12
INTER_Q_OFFSET = 12
# with the search, an inter frame larger than INTRA_TRY times the last intra frame (a scene
# cut, say) is also coded as intra, and the cheaper of the two is sent
INTRA_TRY = 0.5
DEFAULT_Q = 40
# latents of the v2 image codec (intra frames, residuals) are coded with rate-distortion
# rounding (entropy.conditional.rd_round), its weights from lambda(q) times this (0: plain
# rounding). Measured on training footage (realtime2 step 17521, PSNR-YUV BD-rate against
# plain rounding): intra frames of box.mp4 -4.5% at 1, -5.7% at 2, -5.4% at 3, -4.9% at 4;
# of vtest.avi frame 300 -1.8 / -3.4 / -3.2 / -3.0%; 8 frames (q 0..63) at 2: box -6.2%,
# vtest.avi 300-307 -5.0%. (More than 1 pays: the weights see only the linear synthesis.)
RD_ROUNDING = 2.0
DECODER_THREADS = 1  # torch threads while decoding (see _torch_threads)


@dataclass(frozen=True)
class FmConfig:
    """Options of `nvc encode --codec fm`."""

    q: int | None = None  # quality index 0 (smallest) .. 63 (best); default 40 unless bpp is set
    bpp: float | None = None  # target bits per pixel (simple rate control over q)
    refine: int = 0  # encoder-side latent refinement steps per frame (decoder unchanged)
    intra_period: int = 128  # an intra frame every N frames (0: only the first)
    refresh: int = 32  # re-derive the temporal feature from the picture every N frames (0: never)
    # shipped model: realtime2 (default: its q steps keep paying to the top) or realtime
    # (fastest, no quality above ~q40; what `nvc live` uses); see weights/MODEL_CARD*.md
    variant: str = "realtime2"
    weights: str | None = None  # a weights file from `nvc train fm` instead of the shipped one
    device: str = "cpu"  # device of the encoder-only float networks (analysis, refinement)
    threads: int = 1  # torch threads while coding (results are identical for any count)
    residual: bool = True  # inter frames: add a coded residual where it pays (RD)
    # encoder RD search: the residual's own q (q -+ 6, -+ 12), dropping an inter latent that
    # does not pay (FLAG_NO_LATENT), skipping a frame (zero motion, no latent), the full
    # block-motion search, inter frames at q - INTER_Q_OFFSET; False: faster
    search: bool = True
    # inter frames with a residual: predict by coded block vectors (rate-aware search,
    # mvsearch.py) instead of the learned motion coder and inter networks; False: learned
    block_motion: bool = True

    def __post_init__(self) -> None:
        if self.q is not None and not 0 <= int(self.q) < Q_LEVELS:
            raise ValueError(f"q must be in 0..{Q_LEVELS - 1}, got {self.q}")
        if self.q is not None and self.bpp is not None:
            raise ValueError("give q or bpp, not both")
        if self.bpp is not None and not 0 < float(self.bpp) < 64:
            raise ValueError(f"bpp must be positive, got {self.bpp}")
        if not 0 <= int(self.refine) <= 1000:
            raise ValueError(f"refine must be in 0..1000, got {self.refine}")
        if int(self.intra_period) < 0 or int(self.refresh) < 0:
            raise ValueError("intra_period and refresh must be >= 0")
        if self.variant not in VARIANTS:
            raise ValueError(f"variant must be one of {', '.join(VARIANTS)}, not {self.variant!r}")
        if not 1 <= int(self.threads) <= 256:
            raise ValueError(f"threads must be in 1..256, got {self.threads}")


@dataclass(frozen=True)
class FmParams:
    """What the sequence header says about an fm stream."""

    variant: str
    weights_hash: bytes  # first 16 bytes of the weights' SHA-256
    intra_period: int
    refresh: int
    # the layout version; an encoder writes PARAMS_VERSION (tests set earlier ones to make
    # the streams older encoders wrote: below 4 no plane modes)
    version: int = PARAMS_VERSION

    def to_bytes(self) -> bytes:
        name = self.variant.encode()
        return (
            bytes([self.version, len(name)])
            + name
            + self.weights_hash
            + encode_uleb128(self.intra_period)
            + encode_uleb128(self.refresh)
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> FmParams:
        if len(data) < 2 or data[0] not in (1, 2, 3, PARAMS_VERSION):
            raise BitstreamError("fm stream has unsupported codec parameters")
        n = data[1]
        end = 2 + n + wt.HASH_BYTES
        if len(data) < end:
            raise BitstreamError("fm codec parameters are truncated")
        try:
            variant = data[2 : 2 + n].decode()
        except UnicodeDecodeError:
            raise BitstreamError("fm codec parameters name no variant") from None
        digest = bytes(data[2 + n : end])
        period, pos = decode_uleb128(data, end, limit=1 << 31, what="intra period")
        refresh, pos = decode_uleb128(data, pos, limit=1 << 31, what="refresh interval")
        if pos != len(data):
            raise BitstreamError("fm codec parameters have trailing bytes")
        return cls(variant, digest, period, refresh, data[0])


@contextlib.contextmanager
def _torch_threads(n: int) -> Iterator[None]:
    """Run a block with n torch intra-op threads, then restore the count. The exact path's
    results do not depend on it (integer arithmetic); its speed does: its many small matmuls
    gain little from a second thread and lose up to 10x when the cores are busy."""
    old = torch.get_num_threads()
    if n == old:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


@dataclass
class _State:
    """What carries from one frame to the next; identical on both sides, bit for bit."""

    ref_codes: Tensor | None = None  # (1, 96, h, w) float64 codes of the last decoded picture
    ref: Tensor | None = None  # the same as fixed-point network values
    feature: Tensor | None = None  # fixed-point temporal feature; None: derive from `ref`
    since_intra: int = 0  # frames since the last intra frame


def _as_float(ctx: Contexts, device: str) -> Contexts:
    """Fixed-point contexts as float32 network values (for the encoder's float analysis)."""
    parts = (ctx.pred, ctx.c0, ctx.c1, ctx.prior)
    return Contexts(*((t / ONE).to(device, torch.float32) for t in parts))


class _FrameCoder:
    """The shared coding machinery of the encoder and the decoder."""

    def __init__(self, model: FMModel, stream: StreamInfo) -> None:
        self.model = model
        self.stream = stream
        self.internal = fr.internal_format(stream.format)
        self.depth = fr.bit_depth(self.internal)
        wp, hp = fr.padded_size(stream.width, stream.height)
        self.grid = (hp // 8, wp // 8)  # the 1/8-resolution grid
        self.state = _State()

    def _finish(self, x_fp: Tensor, feature: Tensor | None, intra: bool) -> Tensor:
        codes = fr.fixed_to_codes(x_fp, self.depth)
        s = self.state
        s.ref_codes = codes
        s.ref = fr.codes_to_fixed(codes, self.depth)
        s.feature = feature
        s.since_intra = 0 if intra else s.since_intra + 1
        return codes

    def temporal_feature(self, refresh: bool) -> Tensor:
        s = self.state
        if s.ref is None:
            raise BitstreamError("inter frame without a reference: start at a random-access point")
        if s.feature is None or refresh:
            return self.model.exact_adapt(s.ref)
        return s.feature

    def to_frame(self, codes: Tensor, pts: int) -> Frame:
        st = self.stream
        return fr.codes_to_frame(
            codes,
            internal=self.internal,
            out_format=st.format,
            width=st.width,
            height=st.height,
            pts=pts,
            time_base=Fraction(1, 1) / st.fps,
            full_range=st.full_range,
        )


class _RateControl:
    """Picks q per frame for a bits-per-pixel target: a feedback loop on the real coded
    sizes. An intra frame may cost `INTRA_WEIGHT` times the average; the loop corrects q by
    the last frame's ratio to its share and by the spending so far against the budget."""

    INTRA_WEIGHT = 4.0
    GAIN = 6.0  # q steps per halving of the rate error (about half the model's q per octave)

    def __init__(self, bpp: float, pixels: int) -> None:
        self.target = bpp * pixels  # bits per frame on average
        self.q = 32.0
        self.frames = 0
        self.spent = 0.0

    def pick(self) -> int:
        return int(min(max(round(self.q), 0), Q_LEVELS - 1))

    def update(self, bits: float, intra: bool) -> None:
        self.frames += 1
        self.spent += bits
        share = self.target * (self.INTRA_WEIGHT if intra else 1.0)
        frame_error = math.log2(max(bits, 1.0) / share)
        budget_error = math.log2(max(self.spent, 1.0) / (self.target * self.frames))
        step = -self.GAIN * (frame_error + 0.5 * budget_error)
        self.q = min(max(self.q + max(min(step, 8.0), -8.0), 0.0), Q_LEVELS - 1.0)


class _ResidualBackoff:
    """The fast encoder's (no `search`) residual decision. A residual that did not pay
    on the last frames is unlikely to pay on the next one (the realtime model's residual
    paid on 1 of 114 inter frames of cup.mp4 and box.mp4 at q 16/40/63, 640x360, but on
    24 of 57 of vtest.avi), so after the n-th miss in a row the next 2**(n-1) - 1 frames
    (at most BACKOFF_MAX) skip the trial, unless their prediction costs more than
    BACKOFF_JUMP times that of the last trial (a cut, faster motion). Encoder-only: the
    stream format is unchanged."""

    def __init__(self) -> None:
        self._misses = 0
        self._skip = 0
        self._last_cost = float("inf")

    def try_now(self, prediction_cost: float) -> bool:
        if self._skip > 0 and prediction_cost <= BACKOFF_JUMP * self._last_cost:
            self._skip -= 1
            return False
        return True

    def tried(self, prediction_cost: float, paid: bool) -> None:
        self._last_cost = prediction_cost
        self._misses = 0 if paid else self._misses + 1
        self._skip = min((1 << self._misses >> 1) - 1, BACKOFF_MAX) if self._misses else 0


class FmEncoder:
    """Frames -> one FRAME unit each. `last_reconstruction` is the decoder's output, exactly."""

    def __init__(self, stream: StreamInfo, config: FmConfig) -> None:
        self.config = config
        # `weights` (a file from `nvc train fm`) wins over `variant` (the shipped model)
        model = (
            wt.load_weights(config.weights) if config.weights else wt.default_model(config.variant)
        )
        self.model = model.eval()
        self.coder = _FrameCoder(self.model, stream)
        self.params = FmParams(
            self.model.config.variant,
            wt.short_hash(self.model),
            int(config.intra_period),
            int(config.refresh),
        )
        self.device = config.device
        self._analysis = self.model
        if self.device != "cpu":
            import copy

            self._analysis = copy.deepcopy(self.model).to(self.device)
        self.frames = 0
        self.rate = (
            _RateControl(float(config.bpp), stream.width * stream.height)
            if config.bpp is not None
            else None
        )
        self.last_reconstruction: Frame | None = None
        self.last_intra_bytes = 0  # payload size of the last intra frame
        self._backoff = _ResidualBackoff()  # without `search`: when to try a residual

    @property
    def codec_params(self) -> bytes:
        return self.params.to_bytes()

    def _is_intra(self) -> bool:
        p = self.params.intra_period
        return self.frames == 0 or (p > 0 and self.coder.state.since_intra + 1 >= p)

    def encode(self, frame: Frame | None) -> list[Unit]:
        if frame is None:
            return []
        st = self.coder.stream
        if (frame.width, frame.height) != (st.width, st.height):
            raise CodecError(
                f"frame is {frame.width}x{frame.height}, the stream is {st.width}x{st.height}"
            )
        intra = self._is_intra()
        q_frame = q = self._pick_q()
        if not intra and self.config.search:
            q = max(q - INTER_Q_OFFSET, 0)
        refresh = (
            not intra
            and self.params.refresh > 0
            and (self.coder.state.since_intra + 1) % self.params.refresh == 0
        )
        codes = fr.frame_to_codes(frame, self.coder.internal)
        with _torch_threads(int(self.config.threads)):
            before = dataclasses.replace(self.coder.state)
            payload, recon = self._code(codes, q, intra, refresh)
            if not intra and self.config.search and self._intra_pays(len(payload)):
                # intra refresh: an inter frame far dearer than the last intra frame (a
                # scene cut) is also coded as intra; the cheaper one (lambda MSE + bpp) goes
                after = self.coder.state
                self.coder.state = dataclasses.replace(before)
                i_payload, i_recon = self._code(codes, q_frame, True, False)
                if self._cost_codes(codes, i_recon, len(i_payload), q_frame) < self._cost_codes(
                    codes, recon, len(payload), q_frame
                ):
                    payload, recon, intra = i_payload, i_recon, True
                else:
                    self.coder.state = after
        if intra:
            self.last_intra_bytes = len(payload)
        if self.rate is not None:
            self.rate.update(8.0 * len(payload), intra)
        self.frames += 1
        self.last_reconstruction = out = self.coder.to_frame(recon, frame.pts)
        sealed = integrity.seal(payload, out)
        return [Unit(UnitType.FRAME, sealed, pts=frame.pts, rap=intra)]

    def _intra_pays(self, inter_bytes: int) -> bool:
        """Worth trying intra instead: the inter frame costs more than INTRA_TRY times the
        last intra frame."""
        return inter_bytes > INTRA_TRY * self.last_intra_bytes

    def _cost_codes(self, codes: Tensor, recon: Tensor, nbytes: int, q: int) -> float:
        """_cost of a reconstruction given as code values."""
        return self._cost(codes, fr.codes_to_fixed(recon, self.coder.depth), nbytes, q)

    def _pick_q(self) -> int:
        if self.rate is not None:
            return self.rate.pick()
        return DEFAULT_Q if self.config.q is None else int(self.config.q)

    def _code(self, codes: Tensor, q: int, intra: bool, refresh: bool) -> tuple[bytes, Tensor]:
        m, coder = self.model, self.coder
        dev = self.device
        x = fr.codes_to_net(codes, coder.depth).to(dev)
        writer = SymbolWriter()
        if intra:
            with torch.no_grad():
                y = self._analysis.intra.latent(x, q)
            y = self._refine_intra(x, y, q).cpu()
            planes = self.params.version >= 4
            x_fp = m.intra.encode(y, q, writer, self._rd_lambda(q, 0), planes=planes)
            recon = coder._finish(x_fp, None, True)
        else:
            st = coder.state
            if st.ref_codes is None or st.ref is None:
                raise CodecError("an inter frame needs a reference: the first frame is intra")
            scale = float(1 << coder.depth)
            cur_y = fr.split_96(codes)[0] / scale
            ref_y = fr.split_96(st.ref_codes)[0] / scale
            block = self.config.block_motion and self.config.residual
            # the block search refines by half pixels itself, rate-aware: the estimate stays whole
            flow = estimate_motion(cur_y.to(dev), ref_y.to(dev), half=not block)
            if block:
                return self._code_block(codes, x, flow.cpu(), q)
            inter = m.inter
            qt = torch.tensor([q], device=dev)
            with torch.no_grad():
                mv = self._analysis.inter.motion_latent(flow, qt).cpu()
            m_hat = inter.mv_prior.encode(mv, None, writer)
            flow_fp = inter.exact_flow(m_hat, q)
            feature = coder.temporal_feature(refresh)
            ctx = inter.exact_contexts(st.ref, feature, flow_fp)
            ctx_f = _as_float(ctx, dev)
            with torch.no_grad():
                y = self._analysis.inter.frame_latent(x, ctx_f, qt)
            y = self._refine_inter(x, y, ctx_f, q).cpu()
            y_hat = inter.prior.encode(y, ctx.prior, writer)
            x_fp, f = inter.exact_synthesis(y_hat, ctx, q)
            main = writer.finish()
            flags = FLAG_REFRESH if refresh else 0
            if self.config.search:
                # the same frame without its latent (y = 0 at the decoder): motion only
                motion_only = SymbolWriter()
                inter.mv_prior.encode(mv, None, motion_only)
                bare = motion_only.finish()
                bare_fp, bare_f = inter.exact_synthesis(torch.zeros_like(y_hat), ctx, q)
                best = self._cost(codes, x_fp, len(main), q)
                bare_cost = self._cost(codes, bare_fp, len(bare), q)
                if bare_cost <= best:
                    x_fp, f, main, flags = bare_fp, bare_f, bare, flags | FLAG_NO_LATENT
                    best = bare_cost
                # skip: zero motion and no latent, nothing in the main stream
                still = inter.exact_contexts(st.ref, feature, torch.zeros_like(flow_fp))
                skip_fp, skip_f = inter.exact_synthesis(torch.zeros_like(y_hat), still, q)
                empty = SymbolWriter().finish()
                if self._cost(codes, skip_fp, len(empty), q) <= best:
                    x_fp, f, main = skip_fp, skip_f, empty
                    flags |= FLAG_NO_LATENT | FLAG_ZERO_MOTION
            residual = self._residual(codes, x, x_fp, q) if self.config.residual else None
            if residual is not None:
                q_r, res_bytes, x_fp = residual
                # the next temporal feature comes from the corrected picture (the refresh
                # adaptor): the decoder's own feature f never saw the residual
                recon = coder._finish(x_fp, None, False)
                head = bytes([flags | FLAG_RESIDUAL, q, q_r]) + encode_uleb128(len(main))
                return head + main + res_bytes, recon
            recon = coder._finish(x_fp, f, False)
            return bytes([flags, q]) + main, recon
        flags = (FLAG_INTRA if intra else 0) | (FLAG_REFRESH if refresh else 0)
        return bytes([flags, q]) + writer.finish(), recon

    def _code_block(self, codes: Tensor, x: Tensor, flow: Tensor, q: int) -> tuple[bytes, Tensor]:
        """A block-motion inter frame (FLAG_BLOCK_MOTION): the rate-aware block search
        (mvsearch; the cheap one without `search`), or, with `search`, zero motion where
        that costs less, then the residual."""
        coder = self.coder
        ref = coder.state.ref
        if ref is None:
            raise CodecError("an inter frame needs a reference: the first frame is intra")
        lam = float(lambda_of(torch.tensor([q]), self.model.config))
        cur_y = fr.split_96(fr.codes_to_fixed(codes, coder.depth))[0]
        how = mvsearch.FULL if self.config.search else mvsearch.CHEAP
        motion = mvsearch.search(cur_y, fr.split_96(ref)[0], flow, lam, how)
        # the interpolation filter whose prediction is closer to the picture (or SHARP)
        x_fp = subpel.predict(ref, motion.vectors, subpel.SHARP)
        if how.filters:
            cur = fr.codes_to_fixed(codes, coder.depth)
            smooth = subpel.predict(ref, motion.vectors, subpel.SMOOTH)
            if float(torch.sum((smooth - cur) ** 2)) < float(torch.sum((x_fp - cur) ** 2)):
                x_fp, motion = smooth, dataclasses.replace(motion, filter=subpel.SMOOTH)
        writer = SymbolWriter()
        mvcoding.encode(motion, writer)
        main = writer.finish()
        flags = FLAG_BLOCK_MOTION | FLAG_NO_LATENT
        if self.config.search and self._cost(codes, ref, 0, q) <= self._cost(
            codes, x_fp, len(main), q
        ):
            x_fp, main, flags = ref, b"", flags | FLAG_ZERO_MOTION
        residual = self._residual(codes, x, x_fp, q)
        if residual is None:
            return bytes([flags, q]) + main, coder._finish(x_fp, None, False)
        q_r, res_bytes, x_fp = residual
        head = bytes([flags | FLAG_RESIDUAL, q, q_r]) + encode_uleb128(len(main))
        return head + main + res_bytes, coder._finish(x_fp, None, False)

    def _rd_lambda(self, q: int, shift: int) -> float | None:
        """The lambda of the frame's loss (at q), times RD_ROUNDING, for the rate-distortion
        rounding of a latent whose synthesis is attenuated by 2**shift (None: plain
        rounding)."""
        if RD_ROUNDING <= 0:
            return None
        lam = float(lambda_of(torch.tensor([q]), self.model.config))
        return RD_ROUNDING * lam / float(1 << (2 * shift))

    def _cost(self, codes: Tensor, picture: Tensor, nbytes: int, q: int) -> float:
        """lambda(q) MSE + bits per pixel of a candidate reconstruction (the training loss)."""
        depth = self.coder.depth
        pixels = float(codes.shape[2] * codes.shape[3] * 64)
        lam = float(lambda_of(torch.tensor([q]), self.model.config))
        err = (fr.fixed_to_codes(picture, depth) - codes) / float(1 << depth)
        return lam * float(torch.mean(err * err)) + 8.0 * nbytes / pixels

    def _residual(
        self, codes: Tensor, x: Tensor, x_fp: Tensor, q: int
    ) -> tuple[int, bytes, Tensor] | None:
        """Code x - x_fp with the residual codec, amplified by 2**shift before the analysis
        and attenuated by as much after the synthesis (a finer quantization of a small
        signal than q alone gives); returns (residual byte, stream, corrected picture) for
        the trial that lowers lambda(q) MSE + bpp the most, or None when none lowers it.
        Trials: every shift in RESIDUAL_SHIFTS at the frame's q; with `search`, then the
        best shift at q - 6, - 12, ... (RESIDUAL_Q_STEPS) while each step pays, else the
        same upwards (the residual's own q travels in the residual byte, so the decoder
        needs nothing new); without `search`, the shifts are tried only when
        _ResidualBackoff says so."""
        m = self.model
        best: tuple[int, bytes, Tensor] | None = None
        best_cost = prediction_cost = self._cost(codes, x_fp, 0, q)
        backoff = None if self.config.search else self._backoff
        if backoff is not None and not backoff.try_now(prediction_cost):
            return None
        r = x - (x_fp / ONE).to(x.device, torch.float32)  # residual, network values
        tried: dict[tuple[int, int], float] = {}

        def trial(q_r: int, shift: int) -> float:
            nonlocal best, best_cost
            if not 0 <= q_r < Q_LEVELS or (q_r, shift) in tried:
                return tried.get((q_r, shift), float("inf"))
            with torch.no_grad():
                y = self._analysis.residual_coder.latent(r * float(1 << shift), q_r).cpu()
            w = SymbolWriter()
            res_fp = fixed_round_shift(
                m.residual_coder.encode(
                    y, q_r, w, self._rd_lambda(q, shift), planes=self.params.version >= 4
                ),
                shift,
            )
            corrected = clamp_act(x_fp + res_fp)
            stream = w.finish()
            overhead = 1 + len(encode_uleb128(len(stream)))  # the residual byte, the size
            c = self._cost(codes, corrected, len(stream) + overhead, q)
            tried[(q_r, shift)] = c
            if c < best_cost:
                best, best_cost = (q_r | shift << 6, stream, corrected), c
            return c

        costs = {shift: trial(q, shift) for shift in RESIDUAL_SHIFTS}
        if backoff is not None:
            backoff.tried(prediction_cost, best is not None)
            return best
        if self.config.search:
            shift = min(costs, key=lambda k: costs[k])
            for sign in (-1, 1):
                last = costs[shift]
                for step in RESIDUAL_Q_STEPS:
                    c = trial(q + sign * step, shift)
                    if c >= last:
                        break
                    last = c
                if last < costs[shift]:  # this direction paid: the other one is not tried
                    break
        return best

    # ------------------------------------------------------------------ refinement

    def _refine(self, y: Tensor, loss_fn: object) -> Tensor:
        steps = int(self.config.refine)
        if steps <= 0:
            return y
        y = y.detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([y], lr=0.02)
        best, best_loss = y.detach().clone(), float("inf")
        for _ in range(steps + 1):
            loss = loss_fn(y)  # type: ignore[operator]
            value = float(loss.detach())
            if value < best_loss:
                best_loss, best = value, y.detach().clone()
            opt.zero_grad()
            loss.backward()
            opt.step()
        return best

    def _refine_intra(self, x: Tensor, y: Tensor, q: int) -> Tensor:
        intra = self._analysis.intra
        qt = torch.tensor([q], device=x.device)
        lam = lambda_of(qt, self.model.config)
        pixels = float(x.shape[2] * x.shape[3] * 64)

        def loss(v: Tensor) -> Tensor:
            po = intra.prior(v)
            x_hat = intra.head(intra.dec(po.y_hat * intra.q_dec(qt)))
            return (lam * torch.mean((x_hat - x) ** 2) + po.bits / pixels).sum()

        return self._refine(y, loss)

    def _refine_inter(self, x: Tensor, y: Tensor, ctx: Contexts, q: int) -> Tensor:
        inter = self._analysis.inter
        qt = torch.tensor([q], device=x.device)
        lam = lambda_of(qt, self.model.config)
        pixels = float(x.shape[2] * x.shape[3] * 64)

        def loss(v: Tensor) -> Tensor:
            po = inter.prior(v, ctx.prior)
            x_hat, _ = inter.synthesis(po.y_hat * inter.q_dec(qt), ctx)
            return (lam * torch.mean((x_hat - x) ** 2) + po.bits / pixels).sum()

        return self._refine(y, loss)


def split_payload(data: bytes, pts: int) -> tuple[int, int, int, int, bytes, bytes | None]:
    """A FRAME payload -> (flags, q, q_r, shift, main stream, residual stream or None).
    (Bit 5 is read in every version: no earlier encoder set it, and decoders before
    version 3 refuse version 3 streams at the header.)"""
    if len(data) < 2 or data[0] & ~KNOWN_FLAGS or data[1] >= Q_LEVELS:
        raise BitstreamError(f"fm frame {pts} has a bad header")
    flags, q = data[0], data[1]
    if flags & FLAG_INTRA and flags & (FLAG_NO_LATENT | FLAG_ZERO_MOTION):
        raise BitstreamError(f"fm frame {pts} has a bad header")
    if flags & FLAG_BLOCK_MOTION and (
        flags & (FLAG_INTRA | FLAG_REFRESH) or not flags & FLAG_NO_LATENT
    ):
        raise BitstreamError(f"fm frame {pts} has a bad header")
    if not flags & FLAG_RESIDUAL:
        if (len(data) - 2) % 4:
            raise BitstreamError(f"fm frame {pts} is truncated")
        return flags, q, 0, 0, data[2:], None
    if flags & FLAG_INTRA or len(data) < 4:
        raise BitstreamError(f"fm frame {pts} has a bad residual header")
    n, pos = decode_uleb128(data, 3, limit=len(data), what=f"fm frame {pts} main stream size")
    main, res = data[pos : pos + n], data[pos + n :]
    if len(main) != n or n % 4 or len(res) % 4 or not res:
        raise BitstreamError(f"fm frame {pts} is truncated")
    return flags, q, data[2] & 63, data[2] >> 6, main, res


class FmDecoder:
    """FRAME units -> frames, bit-exactly the encoder's reconstructions."""

    def __init__(self, header: SequenceHeader) -> None:
        self.params = FmParams.from_bytes(header.codec_params)
        if self.params.variant not in VARIANTS:
            raise CodecError(f"fm stream uses an unknown variant {self.params.variant!r}")
        self.model = wt.find_model(self.params.variant, self.params.weights_hash).eval()
        self.coder = _FrameCoder(self.model, StreamInfo.from_header(header))
        self.checked = self.params.version >= 2  # versions 2 and later carry checksums
        self.planes = self.params.version >= 4  # DPCM plane modes (dpcm.py)

    def decode(self, unit: Unit | None) -> list[Frame]:
        if unit is None or unit.type != UnitType.FRAME:
            return []
        with _torch_threads(DECODER_THREADS):
            return integrity.decode_checked(unit, self._decode, what="fm", checked=self.checked)

    def _decode(self, unit: Unit) -> list[Frame]:
        flags, q, q_r, shift, main, res = split_payload(bytes(unit.payload), unit.pts)
        reader = SymbolReader(main)
        m, coder = self.model, self.coder
        try:
            if flags & FLAG_BLOCK_MOTION:
                codes = self._decode_block(flags, reader, q_r, shift, res, unit.pts)
            elif flags & FLAG_INTRA:
                x_fp = m.intra.decode(reader, q, coder.grid, self.planes)
                codes = coder._finish(x_fp, None, True)
            else:
                feature = coder.temporal_feature(bool(flags & FLAG_REFRESH))
                st = coder.state
                if st.ref is None:  # temporal_feature has refused this already
                    raise BitstreamError("inter frame without a reference")
                inter = m.inter
                mv_shape, y_shape = inter.latent_shapes(coder.grid)
                if flags & FLAG_ZERO_MOTION:
                    flow_fp = torch.zeros((1, 2, *coder.grid), dtype=torch.float64)
                else:
                    flow_fp = inter.exact_flow(inter.mv_prior.decode(reader, mv_shape, None), q)
                ctx = inter.exact_contexts(st.ref, feature, flow_fp)
                if flags & FLAG_NO_LATENT:
                    y_hat = torch.zeros(y_shape, dtype=torch.float64)
                else:
                    y_hat = inter.prior.decode(reader, y_shape, ctx.prior)
                x_fp, f = inter.exact_synthesis(y_hat, ctx, q)
                next_feature: Tensor | None = f
                if res is not None:
                    r_fp = m.residual_coder.decode(SymbolReader(res), q_r, coder.grid, self.planes)
                    x_fp = clamp_act(x_fp + fixed_round_shift(r_fp, shift))
                    next_feature = None  # as the encoder: re-derived from the picture
                codes = coder._finish(x_fp, next_feature, False)
        except CodecError as e:
            raise BitstreamError(f"fm frame {unit.pts} does not decode: {e}") from None
        return [coder.to_frame(codes, unit.pts)]

    def _decode_block(
        self, flags: int, reader: SymbolReader, q_r: int, shift: int, res: bytes | None, pts: int
    ) -> Tensor:
        coder = self.coder
        ref = coder.state.ref
        if ref is None:
            raise BitstreamError("inter frame without a reference: start at a random-access point")
        if flags & FLAG_ZERO_MOTION:
            x_fp = ref
        else:
            motion = mvcoding.decode(reader, coder.grid, f"fm frame {pts}")
            x_fp = subpel.predict(ref, motion.vectors, motion.filter)
        if res is not None:
            r_fp = self.model.residual_coder.decode(SymbolReader(res), q_r, coder.grid, self.planes)
            x_fp = clamp_act(x_fp + fixed_round_shift(r_fp, shift))
        return coder._finish(x_fp, None, False)


SPEC = CodecSpec(
    id=3,
    name="fm",
    summary="learned causal video codec with feature modulation (DCVC-FM line); low delay, live",
    config_type=FmConfig,
    make_encoder=FmEncoder,
    make_decoder=FmDecoder,
)

__all__ = ["SPEC", "FmConfig", "FmDecoder", "FmEncoder", "FmParams"]
