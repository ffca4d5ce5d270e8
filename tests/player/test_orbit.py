"""Orbit-camera maths of the --view page (nvc.player.orbit)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from nvc.errors import MediaError
from nvc.media.multiview import Camera
from nvc.media.scene_synth import ProceduralScene, SceneConfig
from nvc.player.orbit import (
    DISTANCE_RANGE,
    PITCH_LIMIT,
    OrbitPose,
    OrbitRig,
    forward_of,
    look_at,
    rig_centre,
    up_of,
    view_size,
)

TARGET = np.array([0.0, 0.1, 0.0])  # what the procedural scene's cameras look at


def _arc(cameras: int = 5, width: int = 96, height: int = 64) -> tuple[Camera, ...]:
    return ProceduralScene(SceneConfig(width=width, height=height, cameras=cameras)).cameras


def _forward_rig(count: int = 4) -> list[Camera]:
    """Cameras side by side, all looking along +z (an LLFF-style forward-facing rig)."""
    return [
        Camera(
            f"cam{i}",
            64,
            48,
            50.0,
            50.0,
            32.0,
            24.0,
            np.eye(3),
            np.array([-0.1 * i, 0, 0]),
            2.0,
            100.0,
        )
        for i in range(count)
    ]


def test_the_centre_of_a_rig_looking_at_one_point_is_that_point():
    rig = OrbitRig.of(_arc(), 2)
    assert np.allclose(rig.centre, TARGET, atol=1e-9)
    assert np.allclose(rig_centre(_arc(2)), TARGET, atol=1e-9)  # two cameras are enough
    # the procedural cameras are level: up is world up (y points down in nvc's world)
    assert np.allclose(rig.up, [0.0, -1.0, 0.0], atol=1e-9)
    assert abs(float(rig.base @ rig.up)) < 1e-12 and abs(float(rig.side @ rig.base)) < 1e-12
    assert rig.radius == pytest.approx(float(np.linalg.norm(_arc()[2].center - TARGET)))


def test_a_forward_facing_rig_centres_on_the_llff_focus_depth():
    cams = _forward_rig()
    centre = rig_centre(cams)
    depth = 1.0 / (0.25 / 2.0 + 0.75 / 100.0)  # 7.55: LLFF's spiral focus for near 2, far 100
    mean = np.mean([c.center for c in cams], axis=0)
    assert np.allclose(centre, mean + [0.0, 0.0, depth])
    one = rig_centre(cams[:1])  # one camera: the same rule
    assert np.allclose(one, cams[0].center + [0.0, 0.0, depth])


def test_the_default_camera_is_yaw_0_pitch_its_elevation_distance_1():
    cams = _arc()
    rig = OrbitRig.of(cams, 2)
    pose = rig.pose_of(cams[2])
    elevation = math.degrees(math.asin(float((cams[2].center - TARGET) @ rig.up) / rig.radius))
    assert pose.yaw == pytest.approx(0.0, abs=1e-9)
    assert pose.pitch == pytest.approx(elevation) and pose.pitch > 0  # the arc is above
    assert pose.distance == pytest.approx(1.0)
    # the arc spans 60 degrees: its end cameras are 30 degrees to either side
    assert rig.pose_of(cams[0]).yaw == pytest.approx(-rig.pose_of(cams[4]).yaw)
    assert abs(rig.pose_of(cams[4]).yaw) == pytest.approx(30.0, abs=1.0)


@pytest.mark.parametrize("index", range(5))
def test_the_orbit_camera_at_a_rig_cameras_pose_is_that_camera(index):
    """The procedural rig's cameras look at its centre, level: an orbit to the pose of any
    of them gives back its pose exactly (position, rotation, intrinsics)."""
    cams = _arc()
    rig = OrbitRig.of(cams, 2)
    cam = rig.camera(rig.pose_of(cams[index]))
    assert np.allclose(cam.center, cams[index].center, atol=1e-9)
    assert np.allclose(cam.R, cams[index].R, atol=1e-9)
    assert (cam.width, cam.height, cam.fx, cam.cx) == (96, 64, cams[2].fx, cams[2].cx)


def test_an_orbit_camera_looks_at_the_centre_with_the_rig_up_on_top():
    cams = _arc()
    rig = OrbitRig.of(cams, 2)
    for yaw, pitch, distance in [(0, 0, 1), (90, 30, 2), (-170, -60, 0.5), (45, 80, 1)]:
        cam = rig.camera(OrbitPose(yaw, pitch, distance))
        uv, z = cam.project(rig.centre[None])
        assert np.allclose(uv[0], [cam.cx, cam.cy]) and z[0] > 0  # the centre in the middle
        assert float(np.linalg.norm(cam.center - rig.centre)) == pytest.approx(
            distance * rig.radius
        )
        assert float(up_of(cam) @ rig.up) > 0  # the picture's top is up
        assert abs(float(cam.R[0] @ rig.up)) < 1e-9  # no roll: right stays horizontal
        above = rig.centre + 0.5 * rig.up
        assert cam.project(above[None])[0][0, 1] < cam.cy  # a point above shows higher


def test_yaw_turns_about_up_and_full_turns_come_back():
    rig = OrbitRig.of(_arc(), 2)
    a = rig.camera(OrbitPose(20.0, 10.0, 1.0))
    b = rig.camera(OrbitPose(380.0, 10.0, 1.0))
    assert np.allclose(a.center, b.center) and np.allclose(a.R, b.R)
    # positive yaw moves the camera towards its own right
    c = rig.camera(OrbitPose(30.0, 10.0, 1.0))
    assert float((c.center - a.center) @ a.R[0]) > 0
    # yaw keeps the height above the centre
    assert float((c.center - rig.centre) @ rig.up) == pytest.approx(
        float((a.center - rig.centre) @ rig.up)
    )


def test_pitch_and_distance_are_held_within_their_limits():
    rig = OrbitRig.of(_arc(), 2)
    top = rig.camera(OrbitPose(0.0, 200.0, 1.0))
    limit = rig.camera(OrbitPose(0.0, PITCH_LIMIT, 1.0))
    assert np.allclose(top.center, limit.center)
    near = rig.camera(OrbitPose(0.0, 0.0, 0.0))
    far = rig.camera(OrbitPose(0.0, 0.0, 1e9))
    assert float(np.linalg.norm(near.center - rig.centre)) == pytest.approx(
        DISTANCE_RANGE[0] * rig.radius
    )
    assert float(np.linalg.norm(far.center - rig.centre)) == pytest.approx(
        DISTANCE_RANGE[1] * rig.radius
    )


def test_views_are_bounded_in_pixels_and_keep_their_aspect():
    assert view_size(_arc(width=96, height=64)[0]) == (96, 64)
    big = _arc(2, width=1920, height=1080)[0]
    w, h = view_size(big)
    assert w * h <= 640 * 360 and w % 2 == 0 and h % 2 == 0
    assert w / h == pytest.approx(16 / 9, rel=0.01)
    rig = OrbitRig.of(_arc(3, width=1920, height=1080), 1, max_pixels=320 * 180)
    assert (rig.camera(OrbitPose(0, 0, 1)).width, rig.rig_view(2).height) == (320, 180)
    assert rig.rig_view(2).fx == pytest.approx(big.fx / 6)
    with pytest.raises(MediaError, match="at least 4 pixels"):
        view_size(big, 2)


def test_a_camera_looking_straight_down_still_gets_a_rotation():
    base = _arc()[0]
    cam = look_at(
        "x", base, np.array([0.0, -3.0, 0.0]), np.zeros(3), np.array([0, -1.0, 0]), (96, 64)
    )
    assert np.allclose(forward_of(cam), [0.0, 1.0, 0.0])
    assert np.allclose(cam.R @ cam.R.T, np.eye(3), atol=1e-12)
    with pytest.raises(MediaError, match="stands on the point"):
        look_at("x", base, np.zeros(3), np.zeros(3), np.array([0, -1.0, 0]), (96, 64))


def test_a_rig_refuses_a_default_view_it_does_not_have():
    with pytest.raises(MediaError, match="default view 5"):
        OrbitRig.of(_arc(), 5)
    with pytest.raises(MediaError, match="without cameras"):
        OrbitRig.of([], 0)
    rig = OrbitRig.of(_forward_rig(), 0)  # forward-facing: orbits around the focus point
    assert rig.pose_of(rig.cameras[0]).distance == pytest.approx(1.0)
    assert np.allclose(rig.camera(rig.pose_of(rig.cameras[0])).center, rig.cameras[0].center)
