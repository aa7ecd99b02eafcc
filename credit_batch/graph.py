"""Which model reads which: the order of a night, refused cycles, lineage's reach.

A model whose spec has a feature with ``upstream_model = "pd_cards"`` reads
``pd_cards``'s stored score of the same snapshot and key. The edges are
``{model: {the models it reads}}``; a night scores them in *waves*: wave 0 the
models reading none of the night's others, wave ``n`` those whose upstream
models are all in earlier waves. Cheap to import (the standard library's
:mod:`graphlib` only): the registry checks a new version's edges with it, the
night plans with it, the portfolio page draws it.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable, Mapping

from credit_batch.errors import ModelGraphError

__all__ = ["MAX_WAVES", "check_graph", "downstream_of", "waves"]

#: Waves the nightly DAG runs (its task groups are fixed when it is parsed): a chain of
#: models reading models may be at most this long. Three: a PD model, a model reading
#: it (collections), and one reading that (a recovery strategy).
MAX_WAVES = 3

Edges = Mapping[str, Iterable[str]]


def waves(edges: Edges) -> list[list[str]]:
    """The models of ``edges`` (keys) in waves, each sorted; an upstream model that is
    not a key (not in the night) is read as it is stored, and orders nothing.

    Raises
    ------
    ModelGraphError
        Where the models read each other in a cycle, naming it.
    """
    nodes = set(edges)
    sorter = graphlib.TopologicalSorter({n: set(edges[n]) & nodes for n in nodes})
    try:
        sorter.prepare()
    except graphlib.CycleError as exc:
        raise _cycle_error(exc.args[1]) from None
    out = []
    while sorter.is_active():
        ready = sorted(sorter.get_ready())
        out.append(ready)
        sorter.done(*ready)
    return out


def check_graph(edges: Edges, *, adding: str) -> None:
    """Refuse ``adding``'s edges where they close a cycle or chain more than
    :data:`MAX_WAVES` models. ``edges`` hold every registered model's, ``adding``'s new."""
    every = {n: set(ups) for n, ups in edges.items()}
    for ups in list(every.values()):
        for up in ups:
            every.setdefault(up, set())
    found = waves(every)
    if len(found) > MAX_WAVES:
        chain = _longest_chain(every, adding)
        raise ModelGraphError(
            f"model {adding} would make a chain of {len(found)} models reading each other "
            f"({' -> '.join(chain)}); a night runs at most {MAX_WAVES} waves",
            models=chain,
        )


def downstream_of(edges: Edges, names: Iterable[str]) -> set[str]:
    """``names`` and every model reading one of them, directly or through others."""
    found, todo = set(names), list(names)
    while todo:
        name = todo.pop()
        for reader, ups in edges.items():
            if name in ups and reader not in found:
                found.add(reader)
                todo.append(reader)
    return found


def _cycle_error(cycle: list[str]) -> ModelGraphError:
    # graphlib lists each node before the one it is a predecessor of: scores flow onwards;
    # the cycle is shown from its first name (graphlib's start depends on set order)
    ring = cycle[:-1]
    first = ring.index(min(ring))
    cycle = ring[first:] + ring[:first] + [ring[first]]
    return ModelGraphError(
        f"models would read each other in a cycle: {' -> '.join(cycle)} (each one's score "
        "feeds the next); a night cannot order them",
        models=list(cycle),
    )


def _longest_chain(edges: Mapping[str, set], start: str) -> list[str]:
    """The longest path of readers through ``start``: upstream first."""

    def up(name: str) -> list[str]:
        paths = [up(u) for u in sorted(edges.get(name, ()))]
        return max(paths, key=len, default=[]) + [name]

    def down(name: str) -> list[str]:
        paths = [down(r) for r in sorted(edges) if name in edges[r]]
        return [name] + max(paths, key=len, default=[])

    return up(start) + down(start)[1:]
