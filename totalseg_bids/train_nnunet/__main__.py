"""``python -m totalseg_bids.train_nnunet``."""

from . import main

if __name__ == "__main__":
    raise SystemExit(main())
