"""Streaming: WebRTC signaling, sender and player (built with the streaming issue)."""
