"""Streaming over WebRTC: the `nvc serve`, `nvc live` and `nvc play` commands.

The server sends the very units a `.nvc` file holds, cut into the bitstream's network
messages, on one data channel per viewer; the player reassembles, decodes in a worker
thread and presents on the stream's clock. See README.md in this directory.

Modules: signaling (HTTP offer/answer), source (files and live capture), pattern
(`testsrc`), broadcast (clock, per-viewer queues), server, player, view (`--view`), wire
(control messages), rtc (aiortc glue), cli (`add_parsers`). Importing this package is
cheap: aiortc and aiohttp are imported by the modules that need them.
"""
