"""totalseg_bids: BIDS datasets to segmentation training sets and back.

The package's metadata lives in pyproject.toml (PEP 621); this file keeps
``python setup.py ...`` and ``pip install -e .`` working as users know them.
"""

from setuptools import setup

setup()
