"""Tests of nvc.bitstream, the .nvc container."""
