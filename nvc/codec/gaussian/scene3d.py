"""Files in and out of the gaussian codec's 3D mode.

    encode_scene("scene/", "s.nvc")                   # N3DV/LLFF or COLMAP folder -> .nvc
    decode_scene_file("s.nvc", "out.mp4", camera=3)   # rig camera 3 (default: default view)
    decode_scene_file("s.nvc", "out.mp4", orbit=True) # a smooth path around the rig

`nvc.codec.pipeline.is_scene_input(path)` says whether `nvc encode` reads a path as a
scene (and then calls encode_scene).
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from typing import Any

import numpy as np

from nvc.bitstream import Reader, Writer
from nvc.codec import registry
from nvc.codec.gaussian.codec3d import SceneDecoder, SceneEncoder, is_scene_stream, orbit_cameras
from nvc.codec.limits import check_picture
from nvc.codec.pipeline import DecodeReport, EncodeReport, ProgressFn, first_index
from nvc.errors import NvcError
from nvc.media import open_writer
from nvc.media.multiview import open_scene, read_points3d


def encode_scene(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    codec: str = "gaussian",
    frames: int | None = None,
    options: Mapping[str, Any] | None = None,
    progress: ProgressFn | None = None,
    psnr: bool = True,
    start: float | None = None,
) -> EncodeReport:
    """Encode a multi-view scene folder into a .nvc file (3D mode of `gaussian`).

    One-line errors (MediaError) for a folder that is not a scene, missing or
    inconsistent poses, or cameras whose frame counts, sizes or rates differ. `start`
    (seconds) skips the frames before it, `frames` limits how many are coded."""
    if codec != "gaussian":
        raise NvcError(f"a multi-view scene is coded with --codec gaussian, not {codec!r}")
    if frames is not None and frames < 1:
        raise NvcError(f"--frames must be at least 1, got {frames}")
    spec = registry.get("gaussian")
    config = spec.config(options)
    t0 = time.perf_counter()
    scene = open_scene(input)
    skip = first_index(start, scene.fps)
    if skip >= scene.frame_count:
        raise NvcError(
            f"--start {start:g} s is at or after the end of the scene "
            f"({scene.frame_count} frames at {scene.fps} fps)"
        )
    left = scene.frame_count - skip
    total = left if frames is None else min(frames, left)
    encoder = SceneEncoder(
        scene.cameras,
        scene.fps,
        config,
        frame_count=total,
        points=read_points3d(scene),
    )
    header = encoder.header()
    count = 0
    scores: list[float] = []
    with Writer(output, header) as writer:
        for index, step in enumerate(scene.frames()):
            if index < skip:
                continue
            if count >= total:
                break
            views = [f.to_ndarray("rgb24") for f in step]
            for unit in encoder.encode_views(views, count):
                writer.write(unit)
            scores.append(encoder.reports[-1].psnr)
            count += 1
            if progress:
                progress(count, total)
        writer.close()
        size = writer.bytes_written
    seconds = time.perf_counter() - t0
    return EncodeReport(
        "gaussian",
        count,
        scene.width,
        scene.height,
        size,
        8 * size / (count * scene.width * scene.height),
        seconds,
        frame_rate=scene.fps,
        psnr=float(np.mean([min(s, 100.0) for s in scores])) if psnr else None,
        psnr_metric="rgb" if psnr else None,
        format="rgb24",
    )


def decode_scene_file(
    input: str | os.PathLike[str],
    output: str | os.PathLike[str],
    *,
    camera: int | None = None,
    orbit: bool = False,
    progress: ProgressFn | None = None,
    max_pixels: int | None = None,
) -> DecodeReport:
    """Decode a 3D stream, rendering rig camera `camera` (None: the default view) or,
    with `orbit`, one camera per frame on a smooth path around the rig."""
    t0 = time.perf_counter()
    if camera is not None and orbit:
        raise NvcError("--camera and --orbit exclude each other")
    with Reader(input) as reader:
        header = reader.header
        if not is_scene_stream(header):
            raise NvcError("--camera and --orbit need a free-viewpoint stream (gaussian 3D)")
        check_picture(header, max_pixels)
        decoder = SceneDecoder(header)
        rig = decoder.rig
        if camera is not None and not 0 <= camera < len(rig):
            raise NvcError(f"--camera {camera}: the stream's rig has cameras 0..{len(rig) - 1}")
        expected = header.frame_count
        path = orbit_cameras(rig, expected or 100, decoder.default_view) if orbit else None
        view = rig[decoder.default_view if camera is None else camera]
        count = 0
        with open_writer(
            output, width=header.width, height=header.height, fps=header.fps, format="rgb24"
        ) as writer:
            for unit in reader:
                if not decoder.apply(unit):
                    continue
                cam = view if path is None else path[count % len(path)]
                writer.write(decoder.render_view(cam))
                count += 1
                if progress:
                    progress(count, expected)
            if count == 0:
                raise NvcError("the stream holds no frames")
    return DecodeReport("gaussian", count, header.width, header.height, time.perf_counter() - t0)
