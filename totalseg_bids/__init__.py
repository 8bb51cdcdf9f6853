"""totalseg_bids: BIDS datasets to segmentation training sets and back.

Importing the package imports nothing heavy: every stage lives in its own
module (``python -m totalseg_bids.<stage>``).
"""

__version__ = "0.2.0"
