#!/usr/bin/env python3
"""Rate-distortion benchmark: the same as `nvc bench` (see benchmarks/README.md).

    python benchmarks/rd.py --synthetic 640x360 --frames 60 --out benchmarks/results \
        --name rd_natural
    python benchmarks/rd.py --input /work/data/video/cup.mp4 --frames 60 \
        --out benchmarks/results --name rd_cup                 # real footage
    python benchmarks/rd.py ... --ray auto                     # rows as Ray tasks
"""

from __future__ import annotations

import sys

from nvc.bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
