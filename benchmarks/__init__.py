"""Benchmarks of totalseg_bids against the alternatives users would otherwise choose.

``python -m benchmarks [--quick] [--only NAME ...] [--out FILE]`` (or
``python benchmarks/run.py ...``) generates its own data in a temporary folder,
measures every pair side by side in one run (interleaved repeats, medians) and
prints a Markdown table. See ``benchmarks/RESULTS.md`` for a full run.
"""
