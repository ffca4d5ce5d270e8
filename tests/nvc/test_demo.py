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
    # x264 next to it, at the same size: two CRFs bracket the .nvc file's bytes.
    x = report.x264
    assert x is not None and x.crfs[1] == x.crfs[0] + 1
    assert x.bytes[0] > report.bytes >= x.bytes[1]
    assert math.isclose(x.bpp, report.bpp) and 15 < x.psnr_yuv < 60
    assert "x264" in text and f"{x.psnr_yuv:.2f} dB YUV" in text


def test_x264_at_size_interpolates_between_the_bracketing_crfs():
    from fractions import Fraction

    from nvc.demo import x264_at_size
    from nvc.media import synthetic_clip

    clip = list(synthetic_clip(64, 48, 4, fps=Fraction(25), format="yuv420p", seed=3))
    lo = x264_at_size(clip, Fraction(25), 3000)
    hi = x264_at_size(clip, Fraction(25), 6000)
    assert lo.bytes[0] > 3000 >= lo.bytes[1] and hi.bytes[0] > 6000 >= hi.bytes[1]
    assert hi.psnr_yuv > lo.psnr_yuv  # more bytes, more quality
    tiny = x264_at_size(clip, Fraction(25), 10)  # below x264's smallest stream
    assert tiny.crfs == (51, 51) and tiny.bytes[0] > 10
