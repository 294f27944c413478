"""Creating or updating a rule tag stores the definition and returns; the evaluation for everyone is a job
(JobService.GetJob). Until it runs, the stored values are the old version's; a newer update supersedes a
running job; a failing job is reported on the job."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import sqlalchemy as sa
from profile_helpers import profile_app, profile_process, profile_settings, ref, wait_for

from svc_common.conditions import to_proto
from svc_common.pb.qiming.common.v1 import condition_pb2 as C
from svc_common.pb.qiming.common.v1 import job_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc as pb_grpc
from svc_profile.server import TagServicer

RATINGS = {"R1": "C1", "R2": "C2", "R3": "C3", "R4": "C4", "R5": "C5"}


def at_least(rating: str) -> pb.TagDefinition:
    field = C.FieldRef(source=C.FieldRef.SOURCE_ATTRIBUTE, name="risk_rating")
    condition = C.Condition(comparison=C.Comparison(field=field, operator=C.OPERATOR_GTE, value=to_proto(rating)))
    return pb.TagDefinition(name="risky", condition=condition)


def ended(app: Any, job_id: str) -> job_pb2.Job:
    return wait_for(lambda: (j := app.jobs.get(job_id)).state != job_pb2.JOB_STATE_RUNNING and j)


def holders(conn: Any) -> dict[str, str]:
    """Profile (by customer id) → the definition version its stored ``risky`` value came from."""
    rows = conn.execute(
        sa.text(
            "SELECT i.id_value, t.writer_version FROM profile_tag t JOIN profile_identity i "
            "ON i.profile_id = t.profile_id WHERE t.name = 'risky' AND i.id_type = 2"
        )
    )
    return dict(rows.all())


@contextlib.contextmanager
def persons_locked(url: str) -> Iterator[Any]:
    """A PostgreSQL transaction holding profile_person exclusively: a re-evaluation job waits at its first
    read of the population, while definitions (which never read persons) are still written."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            transaction = conn.begin()
            conn.execute(sa.text("LOCK TABLE profile_person IN ACCESS EXCLUSIVE MODE"))
            yield conn, transaction
            if transaction.is_active:
                transaction.commit()
    finally:
        engine.dispose()


def call(method: Any, request: Any) -> Any:
    return asyncio.run(method(request, None))


def seeded(app: Any) -> TagServicer:
    for user, rating in RATINGS.items():
        app.profiles.upsert_attributes(ref(user), {"risk_rating": to_proto(rating)}, [], "crm", frozenset())
    return TagServicer(app)


def test_create_and_update_return_before_the_evaluation_and_the_newest_version_wins(
    tmp_path: Path, database_url_postgresql: str
) -> None:
    settings = profile_settings(tmp_path, database_url_postgresql, finance_pack=False, recompute_background_profiles=0)
    with profile_app(settings) as app:
        tags = seeded(app)
        with persons_locked(database_url_postgresql) as (conn, _):
            created = call(tags.CreateTagDefinition, pb.CreateTagDefinitionRequest(definition=at_least("C3")))
            assert created.definition.version == 1
            assert created.job.state == job_pb2.JOB_STATE_RUNNING and created.job.kind == "recompute_tag"
            assert created.job.result_name == "risky"
            # The call is back; the job cannot have evaluated anyone yet.
            assert app.jobs.get(created.job.job_id).state == job_pb2.JOB_STATE_RUNNING
            assert holders(conn) == {}
        done = ended(app, created.job.job_id)
        assert done.state == job_pb2.JOB_STATE_SUCCEEDED, done
        assert done.progress_message == "tag 'risky' version 1: re-evaluated for 5 profiles"
        with persons_locked(database_url_postgresql) as (conn, _):
            assert holders(conn) == {"R3": "1", "R4": "1", "R5": "1"}
            first = call(
                tags.UpdateTagDefinition,
                pb.UpdateTagDefinitionRequest(definition=at_least("C2"), expected_version=1),
            )
            second = call(
                tags.UpdateTagDefinition,
                pb.UpdateTagDefinitionRequest(definition=at_least("C5"), expected_version=2),
            )
            assert (first.definition.version, second.definition.version) == (2, 3)
            assert first.job.state == second.job.state == job_pb2.JOB_STATE_RUNNING
            # Until a job runs, every stored value is still version 1's.
            assert holders(conn) == {"R3": "1", "R4": "1", "R5": "1"}
        older, newer = ended(app, first.job.job_id), ended(app, second.job.job_id)
        assert older.state == job_pb2.JOB_STATE_CANCELLED and older.error_reason == "SUPERSEDED"
        assert "newer job" in older.error_message
        assert newer.state == job_pb2.JOB_STATE_SUCCEEDED
        assert newer.progress_message == "tag 'risky' version 3: re-evaluated for 5 profiles"
        with app.core.database.connection() as conn:
            assert holders(conn) == {"R5": "3"}


def test_a_failing_evaluation_is_reported_on_the_job(tmp_path: Path, database_url_postgresql: str) -> None:
    settings = profile_settings(tmp_path, database_url_postgresql, finance_pack=False, recompute_background_profiles=0)
    with profile_app(settings) as app:
        tags = seeded(app)
        with persons_locked(database_url_postgresql) as (conn, _):
            # The database refuses every new value of the tag: the job's first write fails.
            conn.execute(sa.text("ALTER TABLE profile_tag ADD CONSTRAINT no_risky CHECK (name <> 'risky') NOT VALID"))
            created = call(tags.CreateTagDefinition, pb.CreateTagDefinitionRequest(definition=at_least("C4")))
            assert created.job.state == job_pb2.JOB_STATE_RUNNING
        failed = ended(app, created.job.job_id)
        assert failed.state == job_pb2.JOB_STATE_FAILED and failed.HasField("finished_at")
        assert failed.error_reason and "no_risky" in failed.error_message, failed
        # The definition stays; once the database accepts values again, RecomputeTag puts them in place.
        assert app.definitions.get_tag("risky").version == 1
        with app.core.database.connection(write=True) as conn:
            conn.execute(sa.text("ALTER TABLE profile_tag DROP CONSTRAINT no_risky"))
        again = call(tags.RecomputeTag, pb.RecomputeTagRequest(name="risky"))
        assert ended(app, again.job.job_id).state == job_pb2.JOB_STATE_SUCCEEDED
        with app.core.database.connection() as conn:
            assert holders(conn) == {"R4": "1", "R5": "1"}


def test_below_the_threshold_the_evaluation_runs_in_the_call(tmp_path: Path) -> None:
    settings = profile_settings(tmp_path, finance_pack=False, recompute_background_profiles=100)
    with profile_app(settings) as app:
        tags = seeded(app)
        created = call(tags.CreateTagDefinition, pb.CreateTagDefinitionRequest(definition=at_least("C4")))
        assert created.job.state == job_pb2.JOB_STATE_SUCCEEDED
        assert app.jobs.get(created.job.job_id) == created.job
        with app.core.database.connection() as conn:
            assert holders(conn) == {"R4": "1", "R5": "1"}
        external = pb.TagDefinition(name="score", external=pb.ExternalTag(writer="svc_modeling"))
        response = call(tags.CreateTagDefinition, pb.CreateTagDefinitionRequest(definition=external))
        assert not response.HasField("job")  # nobody holds a new external tag: nothing to evaluate


def test_tag_definition_jobs_over_grpc(tmp_path: Path) -> None:
    env = {"QIMING_PROFILE_RECOMPUTE_BACKGROUND_PROFILES": "0", "QIMING_PROFILE_FINANCE_PACK": "false"}
    with profile_process(tmp_path, **env) as profile:
        channel = grpc.insecure_channel(profile.address)
        profiles = pb_grpc.ProfileServiceStub(channel)
        tags = pb_grpc.TagServiceStub(channel)
        jobs = pb_grpc.JobServiceStub(channel)
        for user, rating in RATINGS.items():
            request = pb.UpsertAttributesRequest(user=ref(user), attributes={"risk_rating": to_proto(rating)})
            profiles.UpsertAttributes(request, timeout=30)

        def finished(job_id: str) -> job_pb2.Job:
            def check() -> Any:
                job = jobs.GetJob(pb.GetJobRequest(job_id=job_id), timeout=10).job
                return job.state != job_pb2.JOB_STATE_RUNNING and job

            return wait_for(check)

        def holding() -> set[str]:
            found = set()
            for user in RATINGS:
                listed = tags.ListUserTags(pb.ListUserTagsRequest(user=ref(user)), timeout=10).tags
                found |= {f"{user}:{t.provenance.writer_version}" for t in listed if t.name == "risky"}
            return found

        created = tags.CreateTagDefinition(pb.CreateTagDefinitionRequest(definition=at_least("C4")), timeout=30)
        assert created.job.state == job_pb2.JOB_STATE_RUNNING and created.job.job_id
        assert finished(created.job.job_id).state == job_pb2.JOB_STATE_SUCCEEDED
        assert holding() == {"R4:1", "R5:1"}
        request = pb.UpdateTagDefinitionRequest(definition=at_least("C2"), expected_version=1)
        updated = tags.UpdateTagDefinition(request, timeout=30)
        assert updated.definition.version == 2 and updated.job.job_id != created.job.job_id
        assert finished(updated.job.job_id).state == job_pb2.JOB_STATE_SUCCEEDED
        assert holding() == {"R2:2", "R3:2", "R4:2", "R5:2"}
        channel.close()
