"""``python -m totalseg_bids.stats``."""

from . import main

if __name__ == "__main__":
    raise SystemExit(main())
