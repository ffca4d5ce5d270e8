"""Multi-view scene readers (N3DV/LLFF, COLMAP text and binary) on files the tests write."""

from __future__ import annotations

import json
import logging
import struct
from pathlib import Path

import numpy as np
import pytest

from nvc.errors import MediaError
from nvc.media.frame import Frame
from nvc.media.multiview import (
    POSES_FILE,
    Camera,
    camera_to_llff,
    is_scene,
    open_scene,
    quat_to_rotation,
    read_points3d,
    rotation_to_quat,
    write_colmap_binary,
    write_colmap_text,
    write_points3d_binary,
    write_points3d_text,
)
from nvc.media.open import open_writer

W, H = 32, 24


def _rotation(seed: int) -> np.ndarray:
    q = np.random.default_rng(seed).normal(size=4)
    return quat_to_rotation(q)


def _rig(n: int = 3, width: int = W, height: int = H) -> list[Camera]:
    out = []
    for i in range(n):
        R = _rotation(i)
        centre = np.array([i - 1.0, 0.2 * i, -4.0])
        out.append(
            Camera(
                f"cam{i:02d}",
                width,
                height,
                30.0,
                30.0,
                width / 2,
                height / 2,
                R,
                -R @ centre,
                1.0,
                9.0,
            )
        )
    return out


def _pictures(i: int, frames: int, width: int = W, height: int = H) -> list[np.ndarray]:
    rng = np.random.default_rng(100 + i)
    return [rng.integers(0, 256, (height, width, 3), dtype=np.uint8) for _ in range(frames)]


def _write_video(path: Path, frames: int, seed: int, width: int = W, height: int = H) -> None:
    with open_writer(path, width=width, height=height, fps=25, format="rgb24") as w:
        for k, pic in enumerate(_pictures(seed, frames, width, height)):
            w.write(Frame.from_ndarray(pic, "rgb24", pts=k))


def _write_pngs(folder: Path, frames: int, seed: int) -> None:
    folder.parent.mkdir(parents=True, exist_ok=True)
    with open_writer(str(folder) + "/", width=W, height=H, fps=25, format="rgb24") as w:
        for k, pic in enumerate(_pictures(seed, frames)):
            w.write(Frame.from_ndarray(pic, "rgb24", pts=k))


def _n3dv(root: Path, cams: list[Camera], frames: int = 3) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i, cam in enumerate(cams):
        _write_video(root / f"{cam.name}.mp4", frames, i)
    np.save(root / POSES_FILE, np.array([camera_to_llff(c) for c in cams]))
    return root


def _same_camera(a: Camera, b: Camera) -> None:
    assert a.name == b.name
    assert (a.width, a.height) == (b.width, b.height)
    np.testing.assert_allclose([a.fx, a.fy, a.cx, a.cy], [b.fx, b.fy, b.cx, b.cy], atol=1e-9)
    np.testing.assert_allclose(a.R, b.R, atol=1e-9)
    np.testing.assert_allclose(a.t, b.t, atol=1e-9)


def test_llff_axes_are_converted_to_right_down_forward(tmp_path: Path) -> None:
    # An LLFF camera whose down/right/backwards axes are world +y, +x, -z is nvc's identity
    # rotation; its centre p gives t = -p.
    m = np.zeros((3, 5))
    m[:, 0], m[:, 1], m[:, 2] = (0, 1, 0), (1, 0, 0), (0, 0, -1)
    m[:, 3] = (1.0, 2.0, 3.0)
    m[:, 4] = (H, W, 40.0)
    row = np.concatenate([m.reshape(-1), [0.5, 20.0]])
    _write_video(tmp_path / "cam00.mp4", 2, 0)
    _write_video(tmp_path / "cam01.mp4", 2, 1)
    row2 = row.copy()
    row2[3] = 0.0  # the second camera at x = 0
    np.save(tmp_path / POSES_FILE, np.array([row, row2]))
    scene = open_scene(tmp_path)
    cam = scene.cameras[0]
    np.testing.assert_allclose(cam.R, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(cam.t, [-1.0, -2.0, -3.0])
    assert (cam.fx, cam.fy, cam.cx, cam.cy) == (40.0, 40.0, W / 2, H / 2)
    assert (cam.near, cam.far) == (0.5, 20.0)
    # a point straight ahead of the camera (world +z from its centre) projects to the centre
    uv, z = cam.project(np.array([[1.0, 2.0, 5.0]]))
    np.testing.assert_allclose(uv[0], [W / 2, H / 2])
    assert z[0] == pytest.approx(2.0)


def test_n3dv_round_trip_and_frames(tmp_path: Path) -> None:
    cams = _rig(3)
    scene = open_scene(_n3dv(tmp_path / "s", cams, frames=3))
    assert scene.layout == "n3dv" and len(scene) == 3
    assert (scene.width, scene.height, scene.frame_count, scene.fps) == (W, H, 3, 25)
    for a, b in zip(scene.cameras, cams, strict=True):
        _same_camera(a, b)
        assert (a.near, a.far) == (1.0, 9.0)
    steps = list(scene.frames())
    assert len(steps) == 3
    for k, step in enumerate(steps):
        for i, frame in enumerate(step):
            assert np.array_equal(frame.to_ndarray(), _pictures(i, 3)[k])  # lossless rgb
    assert is_scene(tmp_path / "s") and not is_scene(tmp_path)


def test_llff_focal_is_scaled_for_downsampled_videos(tmp_path: Path) -> None:
    cams = _rig(2, width=2 * W, height=2 * H)  # poses for twice the video size
    root = tmp_path / "s"
    root.mkdir()
    for i, cam in enumerate(cams):
        _write_video(root / f"{cam.name}.mp4", 2, i)
    np.save(root / POSES_FILE, np.array([camera_to_llff(c) for c in cams]))
    cam = open_scene(root).cameras[0]
    assert (cam.width, cam.height) == (W, H)
    assert (cam.fx, cam.cx, cam.cy) == (15.0, W / 2, H / 2)


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_colmap_round_trip_with_videos(tmp_path: Path, kind: str) -> None:
    cams = _rig(3)
    root = tmp_path / "s"
    writer = write_colmap_text if kind == "text" else write_colmap_binary
    writer(root / "sparse" / "0", cams)
    for i, cam in enumerate(cams):
        _write_video(root / f"{cam.name}.mp4", 2, i)
    scene = open_scene(root)
    assert scene.layout == "colmap" and scene.frame_count == 2
    for a, b in zip(scene.cameras, cams, strict=True):
        _same_camera(a, b)
    assert [p.name for p in scene.sources] == ["cam00.mp4", "cam01.mp4", "cam02.mp4"]


def test_colmap_with_png_folders_and_points_lines(tmp_path: Path) -> None:
    cams = _rig(2)
    root = tmp_path / "s"
    sparse = root / "sparse" / "0"
    write_colmap_text(sparse, cams)
    # images named camNN/frame.png (one camera's folder of frames), 2D points filled in
    lines = (sparse / "images.txt").read_text().splitlines()
    out = []
    for line in lines:
        if line and not line.startswith("#"):
            fields = line.split()
            fields[-1] = fields[-1].replace(".png", "/frame_000000.png")
            out += [" ".join(fields), "10.5 3.25 7 11.0 2.0 -1"]
    (sparse / "images.txt").write_text("\n".join(out) + "\n")
    for i, cam in enumerate(cams):
        _write_pngs(root / "images" / cam.name, 3, i)
    scene = open_scene(root)
    assert [c.name for c in scene.cameras] == ["cam00", "cam01"]
    assert scene.frame_count == 3
    with scene.open_camera(1) as reader:
        assert np.array_equal(next(reader).to_ndarray(), _pictures(1, 3)[0])


def _one_camera_line(model: str, params: str) -> str:
    return f"1 {model} {W} {H} {params}\n"


def _colmap_scene_with_model(root: Path, model: str, params: str) -> Path:
    cams = _rig(2)
    sparse = root / "sparse" / "0"
    write_colmap_text(sparse, cams)
    (sparse / "cameras.txt").write_text(_one_camera_line(model, params))
    images = (sparse / "images.txt").read_text().splitlines()
    fixed = [
        " ".join([*line.split()[:8], "1", line.split()[9]]) if line and line[0] != "#" else line
        for line in images
    ]  # every image on camera 1
    (sparse / "images.txt").write_text("\n".join(fixed) + "\n")
    for i, cam in enumerate(cams):
        _write_video(root / f"{cam.name}.mp4", 1, i)
    return root


def test_colmap_simple_pinhole(tmp_path: Path) -> None:
    scene = open_scene(_colmap_scene_with_model(tmp_path / "s", "SIMPLE_PINHOLE", "25 16 12"))
    assert (scene.cameras[0].fx, scene.cameras[0].fy, scene.cameras[0].cx) == (25, 25, 16)


def test_colmap_distortion_is_refused_unless_zero_or_ignored(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = _colmap_scene_with_model(tmp_path / "a", "SIMPLE_RADIAL", "25 16 12 0.05")
    with pytest.raises(MediaError, match="SIMPLE_RADIAL model with lens distortion; undistort"):
        open_scene(root)
    with caplog.at_level(logging.WARNING, logger="nvc.media"):
        scene = open_scene(root, ignore_distortion=True)
    assert scene.cameras[0].fx == 25 and "distortion is ignored" in caplog.text
    zero = _colmap_scene_with_model(tmp_path / "b", "OPENCV", "25 26 16 12 0 0 0 0")
    assert open_scene(zero).cameras[0].fy == 26


def test_quaternions_round_trip() -> None:
    for seed in range(20):
        R = _rotation(seed)
        np.testing.assert_allclose(quat_to_rotation(rotation_to_quat(R)), R, atol=1e-12)


def test_not_a_scene(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="is not a multi-view scene"):
        open_scene(tmp_path)
    (tmp_path / "f.mp4").write_bytes(b"")
    with pytest.raises(MediaError, match="is not a folder"):
        open_scene(tmp_path / "f.mp4")


def test_poses_missing_for_a_camera(tmp_path: Path) -> None:
    root = _n3dv(tmp_path / "s", _rig(3), frames=1)
    _write_video(root / "cam03.mp4", 1, 3)
    with pytest.raises(MediaError, match="poses for 3 cameras but .* has 4 camera videos"):
        open_scene(root)


def test_poses_of_the_wrong_shape_or_values(tmp_path: Path) -> None:
    root = _n3dv(tmp_path / "s", _rig(2), frames=1)
    np.save(root / POSES_FILE, np.zeros((2, 15)))
    with pytest.raises(MediaError, match=r"expected an N x 17 float array"):
        open_scene(root)
    bad = np.array([camera_to_llff(c) for c in _rig(2)])
    bad[0, 0] = np.nan
    np.save(root / POSES_FILE, bad)
    with pytest.raises(MediaError, match="non-finite"):
        open_scene(root)
    bad = np.array([camera_to_llff(c) for c in _rig(2)])
    bad[1, :15] = 0.0  # no rotation at all
    bad[1, 4], bad[1, 9], bad[1, 14] = H, W, 30.0
    np.save(root / POSES_FILE, bad)
    with pytest.raises(MediaError, match="R is not a rotation"):
        open_scene(root)
    (root / POSES_FILE).write_bytes(b"not numpy")
    with pytest.raises(MediaError, match="cannot read"):
        open_scene(root)


def test_mismatched_frame_counts(tmp_path: Path) -> None:
    root = _n3dv(tmp_path / "s", _rig(2), frames=2)
    (root / "cam01.mp4").unlink()
    _write_video(root / "cam01.mp4", 3, 1)
    with pytest.raises(MediaError, match="cam01.mp4 has 3 frames but cam00.mp4 has 2"):
        open_scene(root)


def test_mismatched_sizes(tmp_path: Path) -> None:
    cams = _rig(2)
    root = _n3dv(tmp_path / "s", cams, frames=1)
    (root / "cam01.mp4").unlink()
    _write_video(root / "cam01.mp4", 1, 1, width=2 * W, height=2 * H)
    rows = [camera_to_llff(cams[0]), camera_to_llff(cams[1].scaled(2 * W, 2 * H))]
    np.save(root / POSES_FILE, np.array(rows))
    with pytest.raises(MediaError, match="all cameras must have one size"):
        open_scene(root)
    # a pose for another aspect ratio than its video
    rows = [camera_to_llff(cams[0]), camera_to_llff(cams[1])]
    rows[1][4] = 2 * H  # the pose's image height (hwf column, first value)
    np.save(root / POSES_FILE, np.array(rows))
    with pytest.raises(MediaError, match="the poses do not fit the videos"):
        open_scene(root)


def test_colmap_errors(tmp_path: Path) -> None:
    cams = _rig(2)
    root = tmp_path / "s"
    sparse = root / "sparse" / "0"
    write_colmap_binary(sparse, cams)
    with pytest.raises(MediaError, match="no frames for camera cam00"):
        open_scene(root)
    for i, cam in enumerate(cams):
        _write_video(root / f"{cam.name}.mp4", 1, i)
    data = (sparse / "images.bin").read_bytes()
    (sparse / "images.bin").write_bytes(data[:-20])
    with pytest.raises(MediaError, match="images.bin is truncated"):
        open_scene(root)
    (sparse / "images.bin").write_bytes(struct.pack("<Q", 0))
    with pytest.raises(MediaError, match="registers no images"):
        open_scene(root)
    (sparse / "images.bin").write_bytes(struct.pack("<Q", 10**12))
    with pytest.raises(MediaError, match="claims 1000000000000 records"):
        open_scene(root)
    write_colmap_text(sparse, cams)
    (sparse / "cameras.txt").write_text("1 PINHOLE 32 24 30 30 16\n")
    with pytest.raises(MediaError, match="has 3 parameters, expected 4"):
        open_scene(root)
    (sparse / "cameras.txt").write_text("1 PINHOLE 32 24 30 30 16 12\n")
    with pytest.raises(MediaError, match="names camera 2, which the cameras file lacks"):
        open_scene(root)
    (sparse / "cameras.txt").write_text("1 WEIRD 32 24 30\n")
    with pytest.raises(MediaError, match="unknown camera model 'WEIRD'"):
        open_scene(root)


def test_cameras_round_trip_through_json_exactly() -> None:
    for cam in _rig(3):
        back = Camera.from_json(json.loads(json.dumps(cam.to_json())))
        assert back.to_json() == cam.to_json()
        assert np.array_equal(back.R, cam.R) and np.array_equal(back.t, cam.t)
    with pytest.raises(MediaError, match="bad camera description"):
        Camera.from_json({"name": "x", "width": 4})
    with pytest.raises(MediaError, match="bad camera description"):
        Camera.from_json([1, 2])


@pytest.mark.parametrize("kind", ["text", "binary"])
def test_colmap_points(tmp_path: Path, kind: str) -> None:
    cams = _rig(2)
    root = tmp_path / "s"
    sparse = root / "sparse" / "0"
    write_colmap_text(sparse, cams)
    for i, cam in enumerate(cams):
        _write_video(root / f"{cam.name}.mp4", 1, i)
    assert read_points3d(open_scene(root)) is None
    rng = np.random.default_rng(5)
    points = rng.normal(size=(7, 3))
    colours = rng.integers(0, 256, (7, 3), dtype=np.uint8)
    (write_points3d_text if kind == "text" else write_points3d_binary)(sparse, points, colours)
    got = read_points3d(open_scene(root))
    assert got is not None
    assert np.array_equal(got[0], points) and np.array_equal(got[1], colours)
    if kind == "binary":
        data = (sparse / "points3D.bin").read_bytes()
        (sparse / "points3D.bin").write_bytes(data[:-4])
        with pytest.raises(MediaError, match="truncated"):
            read_points3d(open_scene(root))
    else:
        (sparse / "points3D.txt").write_text("1 0.0 zero 0 0 0 0\n")
        with pytest.raises(MediaError, match="line 1 is not a point"):
            read_points3d(open_scene(root))
