"""``python -m totalseg_bids.crop``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
