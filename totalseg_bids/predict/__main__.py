"""``python -m totalseg_bids.predict``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
