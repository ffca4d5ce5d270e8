"""Codecs: the common contract, the registry, and the codec families."""
