"""`nvc live` with the fm codec: captured, encoded frame by frame, served and played.

Uses the streaming package (nvc.player) the way its own tests do."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

from nvc.player.player import Player, PlayerConfig
from nvc.player.source import LiveConfig, LiveSource  # noqa: E402
from tests.player.helpers import Serving, run  # noqa: E402


def test_live_testsrc_streams_through_the_player(weights_file: Path) -> None:
    config = LiveConfig(
        "testsrc",
        "fm",
        # live encoding wants speed: no encoder RD search (what `nvc live` should pass)
        options={"weights": str(weights_file), "q": 30, "intra_period": 8, "search": False},
        size=(64, 48),
        fps=Fraction(10),
        frames=20,
    )
    source = LiveSource(config)
    shown: list[int] = []

    async def go():  # type: ignore[no-untyped-def]
        async with Serving(source) as (_server, url):
            player = Player(
                PlayerConfig(url, drop_late=False), on_frame=lambda f: shown.append(f.pts)
            )
            return await player.run()

    stats = run(go(), 60)
    assert stats.frames_presented >= 10
    assert shown == sorted(shown)
    assert source.stats.summary()["frames_encoded"] >= 10
