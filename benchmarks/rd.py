#!/usr/bin/env python3
"""Rate-distortion benchmark: the same as `nvc bench` (see benchmarks/README.md).

    python benchmarks/rd.py --synthetic 640x360 --frames 60 --out benchmarks/results \
        --name rd_natural
"""

from __future__ import annotations

import sys

from nvc.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
