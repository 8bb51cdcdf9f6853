"""``python -m totalseg_bids.model``."""

from . import main

if __name__ == "__main__":
    raise SystemExit(main())
