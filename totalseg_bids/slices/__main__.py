"""``python -m totalseg_bids.slices``."""

from . import main

if __name__ == "__main__":
    raise SystemExit(main())
