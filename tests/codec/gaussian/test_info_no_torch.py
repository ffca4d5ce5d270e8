"""`nvc info` on gaussian streams (2D and 3D) reads their parameters without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from nvc.codec.gaussian.scene3d import encode_scene

from .scene3d_data import FAST3D, procedural, write_colmap_scene

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[3]


def test_info_of_gaussian_streams_does_not_import_torch(tmp_path):
    folder = write_colmap_scene(tmp_path / "scene", procedural(frames=2))
    scene = tmp_path / "s.nvc"
    options = {**FAST3D, "gaussians": 40, "max_iterations": 1}
    encode_scene(folder, scene, options=options, psnr=False)
    flat = DATA / "stream_yuv420p.nvc"  # a pinned 2D gaussian stream
    script = textwrap.dedent(
        f"""
        import json, sys
        from nvc.cli import main
        assert main(["info", "--summary", {str(scene)!r}]) == 0
        print("TORCH", "torch" in sys.modules)
        assert main(["info", "--json", {str(flat)!r}]) == 0
        print()
        print("TORCH", "torch" in sys.modules)
        """
    )
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    res = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
    )
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    first = lines.index("TORCH False")  # after the 3D stream's info
    text = "\n".join(lines[:first])
    assert "free-viewpoint (3D Gaussians), 3 cameras (cam00, cam01, cam02), default view 1" in text
    assert "queen residuals" in text
    assert lines[-1] == "TORCH False"  # after the 2D stream's info too
    info = json.loads("\n".join(lines[first + 1 : -1]))
    assert (info["codec"], info["scene"], info["frames"]) == ("gaussian", {"mode": "2d"}, 5)
