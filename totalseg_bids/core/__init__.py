"""Shared building blocks: BIDS names, NIfTI I/O and geometry, errors, atomic
writes, derivative metadata, the dataset index, CLI helpers and batch running.

Stages import from the submodules directly (``from totalseg_bids.core.bids
import BidsName``); this package imports nothing on its own so that it stays
cheap to import.
"""
