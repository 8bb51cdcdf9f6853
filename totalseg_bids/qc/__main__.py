"""``python -m totalseg_bids.qc``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
