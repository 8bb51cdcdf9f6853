"""Synthetic data for tests, the demo and benchmarks, apart from the product.

Phantom BIDS datasets whose ground truth is exact on every grid (:mod:`.phantoms`),
harder variants of them (:mod:`.hard`), the public datasets' download layouts
(:mod:`.layouts`) and tiny TotalSegmentator weights trained on phantoms
(:mod:`.tiny_totalseg`). Nothing in the product imports this package;
``python -m totalseg_bids.phantoms`` and ``python -m totalseg_bids.demo`` are its
command lines.
"""
