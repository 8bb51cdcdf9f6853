"""``python -m totalseg_bids.phantoms``: the command line of :mod:`totalseg_bids.testing.phantoms`."""

from .testing.phantoms import get_parser, main

__all__ = ["get_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
