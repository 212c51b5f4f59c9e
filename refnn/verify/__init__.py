"""Self-verification of refnn (``make check``): every derivative checked by finite differences.

Runs from a checkout or an installed package (``python -m refnn.verify``), on the user's own
numpy and BLAS; in a checkout it also traces every spec ID to its code, tests and check cases.
"""
