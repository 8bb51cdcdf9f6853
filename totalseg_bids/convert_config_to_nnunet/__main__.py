"""``python -m totalseg_bids.convert_config_to_nnunet``."""

from .cli import main

if __name__ == "__main__":
    raise SystemExit(main())
