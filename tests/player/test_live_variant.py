"""`nvc live --codec fm` codes with the fast `realtime` model unless asked otherwise, while
file encoding defaults to `realtime2` (issue 12, item 8)."""

from __future__ import annotations

import argparse
from fractions import Fraction

from nvc.codec.conditional.codec import FmConfig, FmParams
from nvc.player.cli import add_parsers, live_options
from nvc.player.source import LiveConfig, LiveSource
from tests.player.helpers import run


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="nvc")
    add_parsers(p.add_subparsers(dest="command", required=True))
    return p.parse_args(["live", "testsrc", *argv])


async def _header(source: LiveSource):  # type: ignore[no-untyped-def]
    run_ = await source.start()
    try:
        async for _ in run_:
            break
    finally:
        await run_.aclose()
    return run_.header


def test_live_fm_streams_carry_the_realtime_model() -> None:
    assert FmConfig().variant == "realtime2"  # what `nvc encode` would use
    options = live_options(_args("--codec", "fm", "--q", "30"))
    assert options == {"q": 30, "search": False, "variant": "realtime"}
    config = LiveConfig("testsrc", "fm", options, size=(64, 48), fps=Fraction(10), frames=1)
    header = run(_header(LiveSource(config)), 60)
    assert FmParams.from_bytes(header.codec_params).variant == "realtime"


def test_live_variant_flag_and_other_codecs() -> None:
    assert live_options(_args("--codec", "fm", "--variant", "realtime2"))["variant"] == "realtime2"
    assert live_options(_args("--codec", "lossless", "--intra-period", "4")) == {"intra_period": 4}
