"""``python -m totalseg_bids.init_data_config``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
