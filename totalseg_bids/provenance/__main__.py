"""``python -m totalseg_bids.provenance``."""

from . import main

if __name__ == "__main__":
    raise SystemExit(main())
