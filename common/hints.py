"""'Did you mean' for names a program logs: shared by the coordinator (the notice on a run and
its sweep) and the worker (its log), so both name the same candidate."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

# Below this similarity two metric names are unrelated (difflib's ratio: 'val_loss'/'loss'
# scores 0.67, 'accuracy'/'loss' 0.17).
METRIC_NAME_CUTOFF = 0.5
# Shorter names inside another are chance ('lr' in 'learning_rate'), not a misspelling.
MIN_CONTAINED_CHARS = 3


def nearest_name(name: str, logged: Sequence[str]) -> str:
    """The logged name the user most likely meant by ``name``, or "": one that contains the
    other first ('acc' for 'accuracy', 'val/accuracy'), else the closest spelling."""
    lowered = name.lower()
    for candidate in logged:
        c = candidate.lower()
        if (len(c) >= MIN_CONTAINED_CHARS and len(lowered) >= MIN_CONTAINED_CHARS
                and (c in lowered or lowered in c)):
            return candidate
    close = difflib.get_close_matches(name, list(logged), n=1, cutoff=METRIC_NAME_CUTOFF)
    return close[0] if close else ""


def missing_metric_notice(metric: str, logged: Sequence[str]) -> str:
    """The notice for a run that finished without logging ``metric`` but logged ``logged``
    (sorted, no '_' names); "" when it logged the metric or nothing at all."""
    if not metric or metric in logged or not logged:
        return ""
    hint = nearest_name(metric, logged)
    shown = ", ".join(logged[:8]) + (", ..." if len(logged) > 8 else "")
    return (f"notice: never logged the sweep's metric {metric!r} (it logged {shown})"
            + (f"; did you mean {hint!r}?" if hint else ""))
