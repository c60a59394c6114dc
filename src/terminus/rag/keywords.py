"""Keyword queries for SQLite FTS5, and reciprocal rank fusion of ranked lists."""

from __future__ import annotations

import re
from collections.abc import Hashable, Sequence
from typing import TypeVar

_WORD = re.compile(r"\w+", re.UNICODE)
_STOPWORDS = """a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself
    yourselves"""
STOPWORDS = frozenset(_STOPWORDS.split())

K = TypeVar("K", bound=Hashable)

#: The usual RRF constant (Cormack et al. 2009): damps the weight of the very top ranks.
RRF_K = 60


def fts_query(text: str, max_terms: int = 32) -> str | None:
    """An FTS5 ``MATCH`` expression: the query's distinct non-stopwords, OR-ed and quoted
    (so no user text is ever parsed as FTS syntax). ``None`` when nothing is left."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if len(word) > 1 and word not in STOPWORDS:
            seen.setdefault(word, None)
    terms = list(seen)[:max_terms]
    if not terms:
        return None
    return " OR ".join('"' + t.replace('"', '""') + '"' for t in terms)


def reciprocal_rank_fusion(
    rankings: Sequence[Sequence[K]], k: int = RRF_K
) -> list[tuple[K, float]]:
    """Items of several best-first rankings ordered by ``sum(1 / (k + rank))``."""
    scores: dict[K, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda pair: -pair[1])
