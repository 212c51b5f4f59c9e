"""Sphinx configuration (``make docs``): guides in Markdown (MyST), the specs' equations
rendered by MathJax, and the API reference from refnn's numpydoc docstrings."""

from __future__ import annotations

import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent / "_ext"))

import refnn_specs

import refnn  # after the path: the checkout's refnn, not an installed one

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent

project = "refnn"
author = "the refnn developers"
copyright = "2026, the refnn developers"
release = refnn.__version__
version = release
extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "myst_parser",
    "numpydoc",
    "refnn_specs",
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_ext"]
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

# specs/*.md -> docs/specs/*.md (generated on every build; not committed)
refnn_spec_ids = refnn_specs.defined_ids(ROOT / "specs")
refnn_specs.generate(ROOT / "specs", DOCS / "specs")

# MathJax from its CDN; REFNN_DOCS_MATHJAX points a build at a local copy (an offline preview,
# e.g. Debian's libjs-mathjax: file:///usr/share/javascript/mathjax/MathJax.js?config=TeX-AMS_CHTML)
if os.environ.get("REFNN_DOCS_MATHJAX"):
    mathjax_path = os.environ["REFNN_DOCS_MATHJAX"]
    if "config=" in mathjax_path:  # MathJax 2: typeset the math nodes, which MyST marks
        myst_update_mathjax = False
        mathjax2_config = {
            "tex2jax": {"processClass": "math", "ignoreClass": "tex2jax_ignore|mathjax_ignore"}
        }

html_theme = "alabaster"
html_title = f"refnn {release}"
html_static_path = ["_static"]
html_css_files = ["refnn.css"]
html_theme_options = {
    "description": "a verification-first reference implementation of neural networks in numpy",
    "page_width": "1240px",
    "sidebar_width": "230px",
    "fixed_sidebar": True,
    "show_relbars": True,
}
html_sidebars = {"**": ["about.html", "navigation.html", "relations.html", "searchbox.html"]}
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_preserve_defaults = True  # dtype=np.float64, not dtype=<class 'numpy.float64'>
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
nitpicky = False
