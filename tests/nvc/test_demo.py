import math

from nvc.demo import best_codec, run_demo


def test_demo_runs_end_to_end_and_reports(tmp_path):
    lines: list[str] = []
    report = run_demo(frames=6, size=(96, 64), keep=str(tmp_path), out=lines.append)
    assert report.codec == best_codec() == "fm"  # the shipped learned codec, fast to encode
    assert not report.exact and 15 < report.psnr_yuv < 60
    assert report.frames == 6 and report.bytes == (tmp_path / "demo.nvc").stat().st_size
    assert report.bpp > 0
    if report.codec == "lossless":
        assert report.exact and math.isinf(report.psnr_rgb)
    assert (tmp_path / "source.y4m").exists() and (tmp_path / "decoded.y4m").exists()
    text = "\n".join(lines)
    assert "bpp" in text and "decode" in text
