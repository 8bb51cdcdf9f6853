"""``python -m totalseg_bids.bidsify``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
