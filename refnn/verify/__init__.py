"""``make check``: gradient verification of every refnn component (``python -m refnn.verify``)."""
