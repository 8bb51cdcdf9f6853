"""``python -m totalseg_bids.phantoms``: the command line of :mod:`totalseg_bids.testing.phantoms_cli`."""

from .testing.phantoms_cli import get_parser, main

__all__ = ["get_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
