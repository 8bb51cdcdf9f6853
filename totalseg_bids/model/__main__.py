"""``python -m totalseg_bids.model``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
