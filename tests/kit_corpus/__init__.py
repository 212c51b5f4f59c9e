"""A corpus of implementations written in the styles real code uses, for the kit (issue 22).

Each module holds implementations in one style, written for this corpus from the equations
and the interfaces such code has (none copied): CS231n-style functions ``f(x, ...) -> (out,
cache)`` (``cs231n``), the deep-learning course's channels-last functions (``course``),
numpy-ml-style classes (``numpyml``) and numpy code following PyTorch's conventions
(``torchlike``); each also has realistic bugs injected. ``ENTRIES`` lists every check: the
implementation, the arguments a user would pass (layout, declared conventions, configs), and
what the kit must say (nothing for a correct one; a phrase pointing at the bug otherwise).
"""

from __future__ import annotations

from tests.kit_corpus.entries import ENTRIES, Entry

__all__ = ["ENTRIES", "Entry"]
