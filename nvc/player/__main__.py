"""`python -m nvc.player serve|play|live ...`: the streaming commands on their own."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from nvc.errors import NvcError
from nvc.player.cli import add_parsers


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m nvc.player")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    add_parsers(sub)
    args = parser.parse_args(argv)
    try:
        return int(args.run(args))
    except KeyboardInterrupt:
        return 130
    except NvcError as e:
        print(f"nvc: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
