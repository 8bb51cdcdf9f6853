"""``python -m totalseg_bids.train_nnunet``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
