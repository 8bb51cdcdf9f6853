"""``python -m totalseg_bids.demo``: the command line of :mod:`totalseg_bids.testing.demo`."""

from .testing.demo import get_parser, main

__all__ = ["get_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
