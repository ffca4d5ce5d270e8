"""The gaussian codec's free-viewpoint (3D) mode: scene folders in, .nvc out, views back."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from nvc.bitstream import Reader, UnitType
from nvc.cli import main
from nvc.codec.gaussian.codec3d import SceneDecoder, is_scene_stream, orbit_cameras, rig_target
from nvc.codec.gaussian.fit3d import rgb_psnr
from nvc.codec.gaussian.scene3d import encode_scene
from nvc.codec.pipeline import decode_frames
from nvc.errors import CodecError, MediaError
from nvc.media import open_video
from nvc.media.scene_synth import write_n3dv

from .scene3d_data import CAMERAS, FAST3D, FRAMES, HEIGHT, WIDTH, procedural, write_colmap_scene


@pytest.fixture(scope="module")
def coded(tmp_path_factory):
    """A procedural scene as a COLMAP folder, coded once: (folder, file, scene, report)."""
    root = tmp_path_factory.mktemp("scene3d")
    scene = procedural()
    folder = write_colmap_scene(root / "scene", scene)
    out = root / "s.nvc"
    report = encode_scene(folder, out, options=FAST3D)
    return folder, out, scene, report


def _units(path):
    with Reader(path) as r:
        return r.header, [
            u for u in r if u.type in (UnitType.GAUSSIAN_BASE, UnitType.GAUSSIAN_RESIDUAL)
        ]


def _state_crcs(path):
    header, units = _units(path)
    dec = SceneDecoder(header)
    crcs = []
    for u in units:
        assert dec.apply(u)
        crcs.append(dec.state.crc())
    return crcs


def test_round_trip_of_a_small_scene(coded):
    folder, out, scene, report = coded
    assert report.frames == FRAMES and (report.width, report.height) == (WIDTH, HEIGHT)
    header, units = _units(out)
    assert is_scene_stream(header) and header.pix_fmt == "rgb24"
    # bases every `group` frames are the random-access points, residuals between
    assert [u.type for u in units] == [
        UnitType.GAUSSIAN_BASE,
        UnitType.GAUSSIAN_RESIDUAL,
        UnitType.GAUSSIAN_RESIDUAL,
        UnitType.GAUSSIAN_BASE,
    ]
    assert [u.rap for u in units] == [True, False, False, True]
    frames = list(decode_frames(out))
    assert len(frames) == FRAMES
    dec = SceneDecoder(header)
    assert len(dec.rig) == CAMERAS and dec.default_view == CAMERAS // 2
    assert [c.name for c in dec.rig] == [c.name for c in scene.cameras]
    for u, frame in zip(units, frames, strict=True):
        dec.apply(u)
        truth = scene.render(dec.default_view, u.pts)
        # the fit is a few steps only: the picture is recognisable, not good
        assert rgb_psnr(frame.to_ndarray("rgb24") / 255.0, truth) > 12.0
        other = dec.render_view(dec.rig[0])
        assert (other.width, other.height) == (WIDTH, HEIGHT)
        assert not np.array_equal(other.to_ndarray("rgb24"), frame.to_ndarray("rgb24"))


def test_decoded_state_is_bit_identical_in_another_process_with_other_threads(coded):
    _, out, _, _ = coded
    here = _state_crcs(out)
    code = (
        "import json, sys, torch; torch.set_num_threads(2);"
        "from tests.codec.gaussian.test_scene3d import _state_crcs;"
        "from nvc.codec.pipeline import decode_frames;"
        "n = len(list(decode_frames(sys.argv[1])));"
        "print(json.dumps([_state_crcs(sys.argv[1]), n, 'gsplat' in sys.modules]))"
    )
    # no CUDA there: the renders are render3d's, and gsplat is never imported
    env = {**os.environ, "OMP_NUM_THREADS": "2", "CUDA_VISIBLE_DEVICES": ""}
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(__file__))))
    done = subprocess.run(
        [sys.executable, "-c", code, str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=root,
        timeout=120,
        check=True,
    )
    assert json.loads(done.stdout) == [here, FRAMES, False]
    assert len(set(here)) == len(here)  # the states differ frame to frame


def test_encoder_state_is_what_the_decoder_holds(tmp_path):
    scene = procedural(frames=3)
    folder = write_colmap_scene(tmp_path / "scene", scene)
    from nvc.codec.gaussian import GaussianConfig
    from nvc.codec.gaussian.codec3d import SceneEncoder
    from nvc.media.multiview import open_scene, read_points3d

    ms = open_scene(folder)
    enc = SceneEncoder(ms.cameras, ms.fps, GaussianConfig(**FAST3D), points=read_points3d(ms))
    dec = SceneDecoder(enc.header())
    for t, step in enumerate(ms.frames()):
        (unit,) = enc.encode_views([f.to_ndarray("rgb24") for f in step], t)
        (frame,) = dec.decode(unit)
        assert dec.state is not None and dec.state.equal(enc.state)
        # same process, same renderer: the encoder's reconstruction is the decoder's picture
        assert np.array_equal(
            frame.to_ndarray("rgb24"), enc.last_reconstruction.to_ndarray("rgb24")
        )


def test_a_static_scene_costs_next_to_nothing_per_residual_frame(tmp_path):
    folder = write_colmap_scene(tmp_path / "scene", procedural(frames=3, static=True))
    out = tmp_path / "s.nvc"
    encode_scene(folder, out, options={**FAST3D, "group": 3})
    _, units = _units(out)
    assert units[0].type == UnitType.GAUSSIAN_BASE and len(units[0].payload) > 500
    residuals = [len(u.payload) for u in units[1:]]
    assert len(residuals) == 2 and max(residuals) <= 12  # count, two empty sets, the CRC


def test_an_n3dv_folder_encodes_and_decodes(tmp_path):
    folder = write_n3dv(procedural(frames=2), tmp_path / "n3dv")
    out = tmp_path / "s.nvc"
    assert (
        main(
            [
                "encode",
                str(folder),
                "-o",
                str(out),
                "--codec",
                "gaussian",
                "--gaussians",
                "80",
                "--time-budget",
                "3",
            ]
        )
        == 0
    )
    assert len(list(decode_frames(out))) == 2


def test_cli_camera_orbit_and_info(coded, tmp_path, capsys):
    _, out, _, _ = coded
    for extra, name in ((["--camera", "0"], "c0.mp4"), (["--orbit"], "orbit.mp4"), ([], "d.mp4")):
        assert main(["decode", str(out), "-o", str(tmp_path / name), *extra]) == 0
    pictures = {}
    for name in ("c0.mp4", "orbit.mp4", "d.mp4"):
        with open_video(tmp_path / name) as r:
            pictures[name] = [f.to_ndarray("rgb24").astype(int) for f in r]
        assert len(pictures[name]) == FRAMES
    assert np.abs(pictures["c0.mp4"][0] - pictures["d.mp4"][0]).mean() > 1.0
    assert main(["decode", str(out), "-o", str(tmp_path / "x.mp4"), "--camera", "7"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["nvc: error: --camera 7: the stream's rig has cameras 0..2"]
    assert not (tmp_path / "x.mp4").exists()
    assert main(["info", "--summary", str(out)]) == 0
    text = capsys.readouterr().out
    assert "free-viewpoint (3D Gaussians), 3 cameras (cam00, cam01, cam02), default view 1" in text


def test_orbit_is_a_smooth_closed_path_looking_at_the_rig_target():
    rig = procedural().cameras
    path = orbit_cameras(rig, 40)
    target = rig_target(rig)
    centres = np.array([c.center for c in path])
    steps = np.linalg.norm(np.diff(np.vstack([centres, centres[:1]]), axis=0), axis=1)
    assert steps.max() < 0.15 * np.linalg.norm(rig[0].center - rig[-1].center)
    assert np.allclose(centres[0], rig[0].center, atol=1e-6) or np.allclose(
        centres[0], rig[-1].center, atol=1e-6
    )
    for cam in path:
        uv, z = cam.project(target[None])
        assert z[0] > 0 and np.allclose(uv[0], (cam.cx, cam.cy), atol=1e-6)


def test_render_view_before_any_unit_is_an_error(coded):
    header, _ = _units(coded[1])
    with pytest.raises(CodecError, match="no Gaussians decoded yet"):
        SceneDecoder(header).render_view(SceneDecoder(header).rig[0])


# --- one-line errors for folders that are not (good) scenes -----------------------------


def _encode_error(folder, tmp_path, capsys):
    out = tmp_path / "bad.nvc"
    assert main(["encode", str(folder), "-o", str(out), "--codec", "gaussian"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and not out.exists()
    return err[0]


def test_a_folder_that_is_not_a_scene(tmp_path, capsys):
    (tmp_path / "junk").mkdir()
    (tmp_path / "junk" / "notes.txt").write_text("hello")
    assert "is not a multi-view scene" in _encode_error(tmp_path / "junk", tmp_path, capsys)


def test_missing_and_inconsistent_poses(tmp_path, capsys):
    scene = procedural(frames=1)
    folder = write_colmap_scene(tmp_path / "a", scene, points=20)
    (folder / "sparse" / "0" / "images.txt").write_text("# no images\n")
    assert "there are no poses" in _encode_error(folder, tmp_path, capsys)
    folder = write_colmap_scene(tmp_path / "b", scene, points=20)
    lines = (folder / "sparse" / "0" / "images.txt").read_text().splitlines()
    first = lines[1].split()
    same = [
        " ".join([f[0], *first[1:8], *f[8:]]) if f and not f[0].startswith("#") else line
        for line, f in ((line, line.split()) for line in lines)
    ]
    (folder / "sparse" / "0" / "images.txt").write_text("\n".join(same) + "\n")
    assert "inconsistent poses" in _encode_error(folder, tmp_path, capsys)


def test_mismatched_frame_counts_and_sizes(tmp_path, capsys):
    folder = write_colmap_scene(tmp_path / "a", procedural(frames=2), points=20)
    pngs = sorted((folder / "cam01").glob("*.png"))
    pngs[-1].unlink()
    assert "all cameras must have as many frames" in _encode_error(folder, tmp_path, capsys)
    folder = write_colmap_scene(tmp_path / "b", procedural(frames=1), points=20)
    for png in (folder / "cam02").glob("*.png"):
        png.unlink()
    from nvc.media import Frame, open_writer

    with open_writer(folder / "cam02" / "", width=16, height=9, fps=25, format="rgb24") as w:
        w.write(Frame.from_ndarray(np.zeros((9, 16, 3), np.uint8), "rgb24"))
    message = _encode_error(folder, tmp_path, capsys)
    assert "16x9" in message and "32x18" in message


def test_scene_input_needs_the_gaussian_codec(coded, tmp_path, capsys):
    folder = coded[0]
    out = tmp_path / "x.nvc"
    assert main(["encode", str(folder), "-o", str(out), "--codec", "lossless"]) == 1
    assert "coded with --codec gaussian" in capsys.readouterr().err
    with pytest.raises(MediaError):
        encode_scene(tmp_path / "missing", out)


def test_start_and_frames_choose_the_coded_window(coded, tmp_path, capsys):
    folder = coded[0]
    out = tmp_path / "w.nvc"
    args = ["encode", str(folder), "-o", str(out), "--codec", "gaussian", "--gaussians", "60"]
    assert main([*args, "--start", "0.04", "--frames", "2", "--time-budget", "2"]) == 0
    _, units = _units(out)
    assert [u.pts for u in units] == [0, 1] and units[0].type == UnitType.GAUSSIAN_BASE
    capsys.readouterr()
    assert main([*args, "--start", "10"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "at or after the end of the scene" in err[0]


def test_a_plane_sweep_places_points_nearer_the_surfaces_than_random_depths():
    from nvc.codec.gaussian.fit3d import photo_consistent_points
    from nvc.media.scene_synth import ProceduralScene, SceneConfig

    scene = ProceduralScene(SceneConfig(width=64, height=36, cameras=4, frames=1))
    cams = list(scene.cameras)
    images = [scene.render(i, 0) for i in range(4)]
    depths = [scene.depth(i, 0) for i in range(4)]
    bounds = [(0.9 * float(d.min()), 1.1 * float(d.max())) for d in depths]
    rng = np.random.default_rng(0)
    swept, _ = photo_consistent_points(images, cams, 400, rng, bounds=bounds)
    cam, depth = cams[0], depths[0]
    uv = rng.uniform(0, 1, (400, 2)) * (cam.width, cam.height)
    d = cam.directions(uv)
    guessed = cam.center + (rng.uniform(*bounds[0], 400) / (d @ cam.R[2]))[:, None] * d

    def median_depth_error(points):
        uv, z = cam.project(points)
        inside = (uv[:, 0] >= 0) & (uv[:, 0] < cam.width) & (uv[:, 1] >= 0)
        inside &= (uv[:, 1] < cam.height) & (z > 0)
        px = uv[inside].astype(int)
        return float(np.median(np.abs(z[inside] - depth[px[:, 1], px[:, 0]])))

    assert median_depth_error(swept) < 0.5 * median_depth_error(guessed)
