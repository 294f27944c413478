"""The graph of definitions in force: which tags a rule reads, who reads a tag, whether a read closes a cycle."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from svc_common.conditions import Compare, HasTag, References, Source, kind_problem, walk


def tags_read(refs: Iterable[References]) -> set[str]:
    """The tags a rule's references read: ``has_tag`` and tag fields (``refs.tags``), and score fields."""
    refs = list(refs)
    return {n for r in refs for n in r.tags} | {n for r in refs for s, n in r.fields if s is Source.SCORE}


def tag_readers(engine: Any, name: str) -> list[str]:
    """The active tags and segments that read tag ``name``, as an error message names them."""
    readers = [f"tag {n!r}" for n, r in engine.tags.items() if n != name and name in tags_read(r.refs)]
    readers += [f"segment {s!r}" for s, r in engine.segments.items() if r.refs and name in tags_read([r.refs])]
    return sorted(readers)


def kind_clashes(engine: Any, name: str, kind: str) -> list[str]:
    """The active tags and segments that compare tag ``name`` with a value that a tag of ``kind`` values never
    matches (or with an operator that never applies to them), as an error message names them."""
    rules = [(f"tag {n!r}", [r.node, *(node for _, node in r.bands)]) for n, r in engine.tags.items() if n != name]
    rules += [(f"segment {s!r}", [r.node]) for s, r in engine.segments.items()]
    clashes = []
    for label, roots in rules:
        for node in (n for root in roots if root is not None for n in walk(root)):
            if isinstance(node, Compare) and node.source in (Source.TAG, Source.SCORE) and node.name == name:
                given = (node.op, node.operand, node.operands)
            elif isinstance(node, HasTag) and node.tag_name == name and node.op is not None:
                given = (node.op, node.operand, ())
            else:
                continue
            if kind_problem(kind, *given) is not None:
                clashes.append(f"{label} (node {node.path!r})")
                break
    return sorted(clashes)


def frozen_readers(engine: Any, archived: Iterable[str]) -> list[tuple[str, list[str]]]:
    """(archived tag, its active readers) for each archived tag still read: their answers no longer change."""
    return [(name, readers) for name in sorted(archived) if (readers := tag_readers(engine, name))]


def reaches(graph: dict[str, set[str]], start: str, target: str) -> bool:
    stack, seen = [start], set()
    while stack:
        node = stack.pop()
        if node == target:
            return True
        if node not in seen:
            seen.add(node)
            stack.extend(graph.get(node, ()))
    return False
