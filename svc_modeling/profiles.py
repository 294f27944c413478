"""Datasets from svc_profile and the event log: ``BuildFromProfiles`` (point-in-time features, a label from later
events, a journey's exposure as the treatment), live snapshots for scoring and planning, segment populations,
and plans exported as static segments.

Features come from the log (``svc_modeling.snapshot``), so a snapshot in the past sees no event from after it.
Declared attributes (``BatchGetProfiles``) and segment membership (``ExportMembers``) are svc_profile's values
at the time of the build: svc_profile keeps no history of them, which the lineage says.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from google.protobuf import json_format

from svc_common.conditions import EVENT_FILTER_SCOPE, compile_condition, from_proto
from svc_common.errors import FailedPrecondition, FieldViolation, InvalidArgument
from svc_common.pb.qiming.common.v1 import job_pb2
from svc_common.pb.qiming.modeling.v1 import modeling_pb2 as pb
from svc_modeling.catalog import DatasetCatalog
from svc_modeling.config import ModelingSettings
from svc_modeling.frame import Frame, digest
from svc_modeling.guard import moment_us
from svc_modeling.ingest import check_dataset_name
from svc_modeling.jobs import JobContext, JobRunner
from svc_modeling.remote import LogClient, ProfileClient
from svc_modeling.snapshot import ID_COLUMN, LabelSpec, SnapshotBuilder, check_window_names, snapshot_frame

JOURNEY_PREFIX = "journey:"
MAX_HORIZON_SECONDS = 3650 * 86_400  # a label's horizon: at most 10 years after the snapshot


def _us(moment: dt.datetime) -> int:
    return int((moment - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) / dt.timedelta(microseconds=1))


def _iso(us: int) -> str:
    return (dt.datetime(1970, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=us)).isoformat()


def now_us() -> int:
    return _us(dt.datetime.now(dt.UTC))


@dataclass
class Population:
    """Who a snapshot is about: a segment's customers now, or (``customers`` None) everyone in the log."""

    segment_id: str = ""
    customers: list[str] | None = None
    without_customer_id: int = 0

    def describe(self, size: int) -> str:
        if not self.segment_id:
            return f"everyone seen in the event log up to the snapshot ({size} customers)"
        extra = ""
        if self.without_customer_id:
            extra = f"; {self.without_customer_id} members without a customer id left out"
        return f"segment:{self.segment_id} ({size} customers, members as of the build{extra})"


class ProfileSnapshots:
    def __init__(self, settings: ModelingSettings, catalog: DatasetCatalog, jobs: JobRunner) -> None:
        self.settings = settings
        self.catalog = catalog
        self.jobs = jobs
        self.profile = ProfileClient(settings.profile_address, settings.remote_timeout_seconds)
        self.log = LogClient(settings.collect_address, settings.remote_timeout_seconds)

    def close(self) -> None:
        self.profile.close()
        self.log.close()

    # -- checks before a job starts -------------------------------------------------------------------

    def require(self, *, log: bool = True, segment_id: str = "") -> None:
        """UNAVAILABLE naming the address when a service does not answer; NOT_FOUND for an unknown segment."""
        self.profile.require()
        if log:
            self.log.require()
        if segment_id:
            self.profile.segment(segment_id)

    # -- populations ----------------------------------------------------------------------------------

    def population(self, segment_id: str) -> Population:
        if not segment_id:
            return Population()
        customers, without = self.profile.segment_customers(segment_id)
        return Population(segment_id, sorted(set(customers)), without)

    def members(self, segment_id: str) -> set[str]:
        customers, _ = self.profile.segment_customers(segment_id)
        return set(customers)

    # -- snapshots ------------------------------------------------------------------------------------

    def read(self, builder: SnapshotBuilder, ctx: JobContext | None, start: float, end: float) -> None:
        for batch in self.log.events():
            builder.add(batch)
            if ctx is not None:
                ctx.progress(start + (end - start) * 0.5, f"read {builder.events_read} events of the log")

    def snapshot(
        self,
        at_us: int,
        population: Population,
        wanted: Sequence[str],
        ctx: JobContext | None,
        *,
        label: LabelSpec | None = None,
        journey: str = "",
        field_name: str = "features",
    ) -> tuple[Frame, dict[str, str]]:
        builder = SnapshotBuilder(self.settings, at_us, label=label, treatment_journey=journey)
        self.read(builder, ctx, 10, 60)
        customers = population.customers if population.customers is not None else builder.seen()
        if not customers:
            raise FailedPrecondition(f"the population is empty: {population.describe(0)}", reason="EMPTY_POPULATION")
        if ctx is not None:
            ctx.progress(65, f"reading the declared attributes of {len(customers)} customers from svc_profile")
        profiles = self.profile.profiles(customers, ["attributes"])
        attributes = {c: {k: from_proto(v) for k, v in p.attributes.items()} for c, p in profiles.items()}
        # Level 3+ attributes svc_profile withholds from a caller without an unmask role: named, never guessed at.
        withheld = {name for p in profiles.values() for name in p.masked_fields if not name.startswith("tags.")}
        frame = snapshot_frame(builder, customers, attributes, wanted, field_name=field_name, withheld=withheld)
        lineage = {
            "snapshot_at": _iso(at_us),
            "population": population.describe(len(customers)),
            "features_from": f"event log (svc_collect at {self.log.address}), {builder.events_read} events read",
            "attributes_from": f"svc_profile at {self.profile.address}, as of {_iso(now_us())} (no history kept)",
            "profiles_found": str(len(profiles)),
        }
        if withheld:
            lineage["attributes_withheld"] = ", ".join(sorted(withheld)) + " (level 3+, masked by svc_profile)"
        return frame, lineage

    def live(self, segment_id: str, wanted: Sequence[str], ctx: JobContext | None) -> tuple[Frame, dict[str, str]]:
        """A fresh snapshot at now of the model's features, for the segment's customers or everyone."""
        return self.snapshot(now_us(), self.population(segment_id), wanted, ctx)

    # -- BuildFromProfiles --------------------------------------------------------------------------

    def build_from_profiles(self, request: pb.BuildFromProfilesRequest, created_by: str = "") -> job_pb2.Job:
        check_dataset_name(request.name)
        check_window_names(request.features)
        now = now_us()
        at = moment_us(request.snapshot_at, "snapshot_at") if request.HasField("snapshot_at") else now
        label = _label(request.label) if request.HasField("label") else None
        if label is not None and at + label.horizon_us > now:
            ready = _iso(at + label.horizon_us)
            raise FailedPrecondition(
                f"the label's horizon ends at {ready}: the outcome is not known yet; build this snapshot after "
                f"{ready}, or choose a snapshot_at at least {request.label.horizon_seconds} s before now",
                reason="LABEL_HORIZON_NOT_OVER",
                violations=[FieldViolation("snapshot_at", f"can be built after {ready}")],
            )
        if label is None and at > now:
            raise FailedPrecondition(
                f"snapshot_at {_iso(at)} is in the future: build it after then",
                reason="SNAPSHOT_IN_FUTURE",
                violations=[FieldViolation("snapshot_at", f"can be built after {_iso(at)}")],
            )
        journey = ""
        if request.treatment_source:
            journey = request.treatment_source.removeprefix(JOURNEY_PREFIX)
            if not request.treatment_source.startswith(JOURNEY_PREFIX) or not journey:
                raise InvalidArgument(
                    f"unknown treatment source {request.treatment_source!r}",
                    violations=[FieldViolation("treatment_source", "journey:<journey_id>")],
                )
        self.require(segment_id=request.segment_id)

        def run(ctx: JobContext) -> str:
            return self._build(request, at, label, journey, ctx, created_by)

        return self.jobs.submit("build_from_profiles", run, created_by)

    def _build(
        self,
        request: pb.BuildFromProfilesRequest,
        at: int,
        label: LabelSpec | None,
        journey: str,
        ctx: JobContext,
        created_by: str,
        extra_lineage: dict[str, str] | None = None,
    ) -> str:
        ctx.progress(2, "reading the population")
        population = self.population(request.segment_id)
        frame, lineage = self.snapshot(at, population, list(request.features), ctx, label=label, journey=journey)
        ctx.progress(90, f"storing {len(frame.data)} rows")
        if label is not None:
            lineage["label_rule"] = json_format.MessageToJson(request.label, indent=None, sort_keys=True)
            lineage["label_positive_rate"] = f"{float(np.mean(frame.data[label.name or 'label'])):.6g}"
        if journey:
            lineage["treatment_source"] = request.treatment_source
            lineage["treated"] = str(int((frame.data["treatment"] == journey).sum()))
        if request.segment_id:
            lineage["segment_id"] = request.segment_id
        rule = pb.BuildFromProfilesRequest()
        rule.CopyFrom(request)
        rule.ClearField("snapshot_at")
        lineage["build_request"] = json_format.MessageToJson(rule, indent=None, sort_keys=True)  # for refreshes
        lineage["build_job"] = ctx.job_id
        lineage.update(extra_lineage or {})
        dataset = self.catalog.create(
            frame,
            held_by_job=ctx.job_id,  # a review goes on using a rebuilt dataset: not deleted before the job ends
            name=request.name,
            origin="profile_snapshot",
            description=f"profile features at {_iso(at)}" + (f", label {label.name!r}" if label else ""),
            lineage=lineage,
            customer_id_column=ID_COLUMN,
            created_by=created_by,
        )
        return dataset.dataset_id

    def refresh(self, dataset: pb.Dataset, ctx: JobContext, created_by: str = "") -> str | None:
        """The same build (population, features, label, treatment) at the freshest snapshot whose label is
        known: now, or now minus the label's horizon. None when ``dataset`` is not a profile snapshot."""
        if dataset.origin != "profile_snapshot" or "build_request" not in dataset.lineage:
            return None
        request = json_format.Parse(dataset.lineage["build_request"], pb.BuildFromProfilesRequest())
        label = _label(request.label) if request.HasField("label") else None
        at = now_us() - (label.horizon_us if label is not None else 0)
        journey = request.treatment_source.removeprefix(JOURNEY_PREFIX)
        self.require(segment_id=request.segment_id)
        return self._build(request, at, label, journey, ctx, created_by, {"refreshed_from": dataset.dataset_id})

    # -- plans as segments ------------------------------------------------------------------------------

    def export_plan(
        self, prefix: str, names: Sequence[str], ids: np.ndarray, choice: np.ndarray, source: str
    ) -> dict[str, str]:
        """One static segment per intervention, members replaced by the planned customers; lineage entries."""
        lineage: dict[str, str] = {}
        segment_ids = []
        for j, (name, segment_id) in enumerate(zip(names, segment_names(prefix, names), strict=True)):
            members = [str(i) for i in ids[choice == j]]
            size, missing = self.profile.replace_static_members(segment_id, f"{prefix} {name}", source, members)
            segment_ids.append(segment_id)
            lineage[f"segment_{name}"] = f"{segment_id}: {size} members" + (
                f", {missing} customers without a profile left out" if missing else ""
            )
        lineage["segments"] = ",".join(segment_ids)
        lineage["segment_export"] = f"svc_profile at {self.profile.address}"
        return lineage


def segment_name(prefix: str, intervention: str) -> str:
    """``<prefix>_<intervention>`` as a svc_profile segment id (lower_snake_case, at most 64 characters).

    An ASCII name of at most 64 characters is lower-cased with other characters as ``_`` ("Cash-Back" →
    ``plan_cash_back``), the id earlier releases exported, so journeys targeting it keep being refreshed; two
    such names of one plan that clean to the same id are refused (``segment_names``). A name that cleaning would
    erase (Chinese) or cut (too long) is cleaned and gets ``_`` + the first 8 hex digits of the SM3 of the raw
    name, so that different names ("优惠券", "红包券") never share a segment, in one plan or across plans."""
    raw = f"{prefix}_{intervention}"
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c == "_") else "_" for c in raw.lower())
    if raw.isascii() and len(raw) <= 64:
        return cleaned
    return f"{cleaned[:55]}_{digest(raw.encode())[:8]}"


def segment_names(prefix: str, names: Sequence[str]) -> list[str]:
    """The segment id of each intervention; INVALID_ARGUMENT when two would share one."""
    ids = [segment_name(prefix, name) for name in names]
    for j, segment_id in enumerate(ids):
        if segment_id in ids[:j]:
            other = names[ids.index(segment_id)]
            raise InvalidArgument(
                f"interventions {other!r} and {names[j]!r} would both be exported as segment {segment_id!r}",
                violations=[FieldViolation("export_segment_prefix", "rename one of the interventions")],
            )
    return ids


def check_export_prefix(prefix: str) -> None:
    if prefix and not (prefix[0].isascii() and prefix[0].isalpha() and len(prefix) <= 48):
        raise InvalidArgument(
            f"export_segment_prefix {prefix!r} must start with a letter and have at most 48 characters",
            violations=[FieldViolation("export_segment_prefix", "lower_snake_case, e.g. spring")],
        )


def restrict(frame: Frame, id_column: str, members: set[str]) -> Frame:
    """The rows of ``frame`` whose customer id is in ``members``."""
    ids = frame.data[id_column].astype(object).map(_text)
    keep = ids.isin(members).to_numpy()
    return Frame(frame.data.loc[keep].reset_index(drop=True), frame.columns)


def _text(v: object) -> str:
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def _label(rule: pb.LabelRule) -> LabelSpec:
    if not rule.event_type:
        raise InvalidArgument(
            "the label needs an event type", violations=[FieldViolation("label.event_type", "", "MISSING_FIELD")]
        )
    if not 0 < rule.horizon_seconds <= MAX_HORIZON_SECONDS:
        raise InvalidArgument(
            f"label.horizon_seconds {rule.horizon_seconds}: the label needs a horizon after the snapshot of 1 s to "
            f"{MAX_HORIZON_SECONDS} s (10 years)",
            violations=[FieldViolation("label.horizon_seconds", f"1..{MAX_HORIZON_SECONDS}, e.g. 2592000 (30 days)")],
        )
    name = rule.name or "label"
    node = compile_condition(rule.filter, EVENT_FILTER_SCOPE, field="label.filter") if rule.HasField("filter") else None
    return LabelSpec(name, rule.event_type, node, rule.horizon_seconds * 1_000_000, rule.absent)
