""""Did you mean" hints for mistyped names (models, subcommands, options)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["close_matches"]


def close_matches(word: str, choices: Iterable[str], n: int = 3) -> list[str]:
    """Up to ``n`` of ``choices`` that look like ``word`` (difflib, ratio >= 0.6), best first;
    ``word`` itself is never suggested."""
    return [c for c in difflib.get_close_matches(word, list(choices), n=n + 1, cutoff=0.6) if c != word][:n]
