"""The refusal of a delete whose target something still uses: FAILED_PRECONDITION with a machine-readable reason
(``DATASET_IN_USE``, ``MODEL_IN_USE``, ``ANALYSIS_IN_USE``), the counts in the error's metadata, and a message
naming a few users of each kind, how many there are, and what to call first."""

from __future__ import annotations

from collections.abc import Mapping

from svc_common.errors import FailedPrecondition

# kind → (one, many, how to name one user, what to do about them)
_KINDS = {
    "models": (
        "model version", "model versions", lambda m: f"{m[0]} v{m[1]}", "delete the models (ModelService.DeleteModel)",
    ),
    "analyses": (
        "driver analysis", "driver analyses", str, "delete the analyses (CausalService.DeleteDriverAnalysis)",
    ),
    "schedules": (
        "review schedule", "review schedules", str, "delete the review schedules (ReviewService.DeleteReviewSchedule)",
    ),
    "jobs": (
        "pending or running job", "pending or running jobs", lambda j: f"{j[0]} {j[1]} {j[2].lower()}",
        "let the jobs end or cancel them (JobService.CancelJob)",
    ),
}  # fmt: skip


def in_use_message(subject: str, users: Mapping, schedules_advice: str = "") -> str:
    """E.g. "dataset 'd' is in use by 2 model versions (churn v1, churn v2); 1 pending or running job (j1
    train_model running): delete the models (ModelService.DeleteModel), let the jobs end or cancel them
    (JobService.CancelJob), then delete it"."""
    counts, parts, advice = users["counts"], [], []
    for kind, (one, many, name, todo) in _KINDS.items():
        count = counts.get(kind, 0)
        if not count:
            continue
        names = [name(u) for u in users[kind]]
        more = f", and {count - len(names)} more" if count > len(names) else ""
        parts.append(f"{count} {one if count == 1 else many} ({', '.join(names)}{more})")
        advice.append(schedules_advice if kind == "schedules" and schedules_advice else todo)
    return f"{subject} is in use by {'; '.join(parts)}: {', '.join(advice)}, then delete it"


def refuse_if_in_use(subject: str, users: Mapping, reason: str, metadata: Mapping[str, str], **advice: str) -> None:
    """Raise the refusal when ``users`` counts anything (``metadata`` gets the counts)."""
    counts = users["counts"]
    if any(counts.values()):
        raise FailedPrecondition(
            in_use_message(subject, users, **advice),
            reason=reason,
            metadata={**metadata, **{k: str(v) for k, v in counts.items()}},
        )
