"""`--pack video` through the real 3D codec: scene folders in, H.264-packed residuals out."""

from __future__ import annotations

from nvc.bitstream import Reader, UnitType
from nvc.cli import main
from nvc.codec.gaussian import GaussianConfig
from nvc.codec.gaussian.codec3d import SceneDecoder, SceneEncoder
from nvc.codec.gaussian.scene3d import encode_scene
from nvc.codec.pipeline import decode_frames
from nvc.media.multiview import open_scene, read_points3d

from .scene3d_data import FAST3D, procedural, write_colmap_scene


def _code(folder, pack: str):
    """Encode a scene folder with one residual coder; the units and the encoder's states."""
    ms = open_scene(folder)
    config = GaussianConfig(**{**FAST3D, "group": 4}, pack=pack)
    enc = SceneEncoder(ms.cameras, ms.fps, config, points=read_points3d(ms))
    units, states = [], []
    for t, step in enumerate(ms.frames()):
        units += enc.encode_views([f.to_ndarray("rgb24") for f in step], t)
        states.append(enc.state)
    return enc, units, states


def test_video_packing_decodes_to_the_encoders_states_and_matches_queen(tmp_path):
    folder = write_colmap_scene(tmp_path / "scene", procedural(frames=4))
    enc, units, states = _code(folder, "video")
    dec = SceneDecoder(enc.header())
    assert dec.params.pack == 1
    for unit, state in zip(units, states, strict=True):
        assert dec.apply(unit) and dec.state.equal(state)
        assert b"x264" not in unit.payload  # no settings SEI
    assert [u.type for u in units] == [UnitType.GAUSSIAN_BASE] + [UnitType.GAUSSIAN_RESIDUAL] * 3
    # lossless by default: the same fits from the same states as QUEEN's coder, so the
    # same states, in other bytes
    _, queen_units, queen_states = _code(folder, "queen")
    assert all(a.equal(b) for a, b in zip(states, queen_states, strict=True))
    assert any(a.payload != b.payload for a, b in zip(units[1:], queen_units[1:], strict=True))
    assert len(set(s.crc() for s in states)) == len(states)  # the state changes every frame


def test_a_static_scene_costs_fourteen_bytes_a_residual_frame(tmp_path):
    folder = write_colmap_scene(tmp_path / "scene", procedural(frames=4, static=True))
    _, units, states = _code(folder, "video")
    sizes = [len(u.payload) for u in units]
    # the first residual frame carries the videos' IDR pictures; then every video repeats
    # its picture: 10 zero NAL counts and the state CRC
    assert sizes[2:] == [14, 14]
    assert all(s.equal(states[0]) for s in states)


def test_cli_pack_video_encodes_and_decodes(tmp_path):
    folder = write_colmap_scene(tmp_path / "scene", procedural(frames=2))
    out = tmp_path / "s.nvc"
    args = ["encode", str(folder), "-o", str(out), "--codec", "gaussian", "--pack", "video"]
    assert main([*args, "--gaussians", "80", "--time-budget", "3"]) == 0
    with Reader(out) as r:
        header = r.header
        assert SceneDecoder(header).params.pack == 1
    assert len(list(decode_frames(out))) == 2
    again = tmp_path / "again.nvc"
    report = encode_scene(folder, again, options={**FAST3D, "pack": "video"})
    assert report.frames == 2
