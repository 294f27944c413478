"""Writing scores back to svc_profile as tags: the seam a later issue connects.

svc_profile is not built yet, so the service is wired with :class:`NotConnectedTagWriter`: batch scoring
stores its versioned score table (a dataset, readable with ``DatasetService.ReadRows``) and records in the
table's lineage that the write-back did not happen. A real writer calls ``TagService.WriteTagsStream`` of
svc_profile with the model version as the tag's provenance.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class ScoreTag:
    """One customer's score as a tag value."""

    customer_id: str
    value: float


class ProfileTagWriter(Protocol):
    def write_scores(self, tag_name: str, model_name: str, model_version: int, scores: Sequence[ScoreTag]) -> int:
        """Write the tag for each customer (provenance: model and version); returns how many were written."""
        ...

    @property
    def connected(self) -> bool: ...


class NotConnectedTagWriter:
    """svc_profile is not connected: nothing is written, and callers can tell."""

    connected = False

    def write_scores(self, tag_name: str, model_name: str, model_version: int, scores: Sequence[ScoreTag]) -> int:
        return 0
