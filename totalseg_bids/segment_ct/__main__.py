"""``python -m totalseg_bids.segment_ct``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
