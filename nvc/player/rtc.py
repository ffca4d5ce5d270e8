"""aiortc glue shared by the server, the player and the view page.

ICE: peers use host candidates only (no STUN or TURN server is configured, so nothing is
contacted outside the machine and a LAN). aioice gathers the addresses of every interface
except loopback; on a machine whose only interface is loopback it would find none, so
`ensure_host_candidates()` then makes it offer 127.0.0.1 (see README.md, "ICE").
"""

from __future__ import annotations

import logging

import aioice.ice
from aiortc import RTCConfiguration, RTCPeerConnection

log = logging.getLogger("nvc.player")

CHANNEL_LABEL = "nvc"  # label of the units data channel
CHANNEL_ID = 0  # its SCTP stream id: the channel is negotiated out of band (both sides create it)

_patched = False


def ensure_host_candidates() -> None:
    """Let ICE use 127.0.0.1 when the machine has no other address (idempotent)."""
    global _patched
    if _patched:
        return
    original = aioice.ice.get_host_addresses
    if original(use_ipv4=True, use_ipv6=True):
        _patched = True  # nothing to do: other interfaces exist
        return

    def with_loopback(use_ipv4: bool, use_ipv6: bool) -> list[str]:
        found = original(use_ipv4=use_ipv4, use_ipv6=use_ipv6)
        return found or (["127.0.0.1"] if use_ipv4 else [])

    aioice.ice.get_host_addresses = with_loopback
    log.info("no network interface besides loopback: ICE offers 127.0.0.1")
    _patched = True


def new_peer() -> RTCPeerConnection:
    """A peer connection with host candidates only (no STUN/TURN)."""
    ensure_host_candidates()
    return RTCPeerConnection(RTCConfiguration(iceServers=[]))
