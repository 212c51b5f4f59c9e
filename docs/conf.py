"""Sphinx configuration: the API reference from refnn's numpydoc docstrings (``make docs``)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

project = "refnn"
author = "refnn contributors"
release = "0.1.0"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.intersphinx", "numpydoc"]
exclude_patterns = ["_build"]
html_theme = "alabaster"
autodoc_member_order = "bysource"
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
nitpicky = False
# refnn.fit's docstring writes |B| (a batch's size), which reStructuredText reads as a
# substitution: define it as the literal text.
rst_prolog = r"""
.. |B| replace:: \|B\|
"""
