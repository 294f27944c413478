"""Journey size limits (session 14, review F8c): a draft over the node or byte limit is refused before anything else
is done with it, and ListJourneys pages by bytes, so no draft can make the listing too large for a default client."""

from __future__ import annotations

import grpc
import pytest
from campaign_helpers import campaign_service, node
from test_campaign_review12_grpc import serving  # the servicers behind the server kit, on a loop in a thread

from svc_campaign import server
from svc_campaign.graph import MAX_GRAPH_BYTES, MAX_NODES, validate
from svc_campaign.journeys import MAX_DESCRIPTION_CHARS
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb
from svc_common.pb.qiming.campaign.v1 import campaign_pb2_grpc as pb_grpc


def chain(waits: int, label: str = "") -> pb.JourneyGraph:
    """A chain of ``waits`` wait nodes ending in an exit (``label`` on each node makes it heavier)."""
    nodes = [
        node(f"w{i}", label=label, wait=pb.WaitNode(duration_seconds=60, next_node_id=f"w{i + 1}"))
        for i in range(waits)
    ]
    nodes.append(node(f"w{waits}", exit=pb.ExitNode(reason="done")))
    return pb.JourneyGraph(entry_node_id="w0", nodes=nodes)


def _refused(call) -> grpc.RpcError:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        call()
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, info.value.details()
    return info.value


def test_a_draft_over_the_node_or_byte_limit_is_refused_naming_the_limit(tmp_path, database_url) -> None:
    too_many = chain(MAX_NODES)  # MAX_NODES waits and the exit
    too_heavy = chain(100, label="x" * (MAX_GRAPH_BYTES // 100))
    assert too_heavy.ByteSize() > MAX_GRAPH_BYTES
    with campaign_service(tmp_path, database_url) as service, serving(service) as (channel, _audit):
        journeys = pb_grpc.JourneyServiceStub(channel)
        for journey_id, draft, limit in (("many", too_many, f"at most {MAX_NODES}"), ("heavy", too_heavy, "bytes")):
            create = pb.CreateJourneyRequest(journey=pb.Journey(journey_id=journey_id, name="n", draft=draft))
            refused = _refused(lambda create=create: journeys.CreateJourney(create))
            assert "journey.draft" in refused.details() and limit in refused.details(), refused.details()
            assert str(MAX_NODES if journey_id == "many" else MAX_GRAPH_BYTES) in refused.details()
        long_description = pb.Journey(journey_id="d", name="n", description="x" * (MAX_DESCRIPTION_CHARS + 1))
        assert (
            "journey.description"
            in _refused(lambda: journeys.CreateJourney(pb.CreateJourneyRequest(journey=long_description))).details()
        )
        with service.db.connection() as conn:
            assert service.journeys.store.rows(conn, [], "", 10) == []  # nothing was saved

        journeys.CreateJourney(pb.CreateJourneyRequest(journey=pb.Journey(journey_id="j", name="n", draft=chain(3))))
        update = pb.UpdateJourneyDraftRequest(journey_id="j", draft=too_many)
        assert f"at most {MAX_NODES}" in _refused(lambda: journeys.UpdateJourneyDraft(update)).details()
        update = pb.UpdateJourneyDraftRequest(journey_id="j", draft=too_heavy)
        assert str(MAX_GRAPH_BYTES) in _refused(lambda: journeys.UpdateJourneyDraft(update)).details()
        kept = journeys.GetJourney(pb.GetJourneyRequest(journey_id="j")).journey
        assert (kept.draft_revision, len(kept.draft.nodes)) == (1, 4)
        # At the limit is fine.
        at_limit = pb.UpdateJourneyDraftRequest(journey_id="j", draft=chain(MAX_NODES - 1))
        assert len(journeys.UpdateJourneyDraft(at_limit).journey.draft.nodes) == MAX_NODES


def test_validate_reports_a_graph_over_the_byte_limit() -> None:
    problems, compiled = validate(chain(100, label="x" * (MAX_GRAPH_BYTES // 100)), lambda _t: None, lambda _e: None)
    assert [p.code for p in problems] == ["too_large"] and compiled is None


def test_list_journeys_pages_by_bytes(tmp_path, database_url, monkeypatch) -> None:
    monkeypatch.setattr(server, "LIST_PAGE_BYTES", 20_000)
    heavy = chain(20, label="y" * 400)  # about 9 KB a journey
    with campaign_service(tmp_path, database_url) as service, serving(service) as (channel, _audit):
        journeys = pb_grpc.JourneyServiceStub(channel)
        for i in range(7):
            journey = pb.Journey(journey_id=f"j{i}", name=f"n{i}", draft=heavy)
            journeys.CreateJourney(pb.CreateJourneyRequest(journey=journey))
        seen: list[str] = []
        token, pages = "", 0
        while True:
            request = pb.ListJourneysRequest()
            request.page.page_token = token
            response = journeys.ListJourneys(request)
            assert 1 <= len(response.journeys) <= 2, len(response.journeys)
            assert response.ByteSize() <= 20_000 + heavy.ByteSize()
            seen += [j.journey_id for j in response.journeys]
            pages += 1
            token = response.next_page_token
            if not token:
                break
        assert seen == [f"j{i}" for i in range(7)] and pages >= 4
        # The page size still applies, with a token for the rest; a page that ends exactly at the last one has none.
        monkeypatch.setattr(server, "LIST_PAGE_BYTES", 10**9)
        first = journeys.ListJourneys(pb.ListJourneysRequest(page={"page_size": 3}))
        assert [j.journey_id for j in first.journeys] == ["j0", "j1", "j2"] and first.next_page_token
        rest = journeys.ListJourneys(pb.ListJourneysRequest(page={"page_size": 4, "page_token": first.next_page_token}))
        assert [j.journey_id for j in rest.journeys] == ["j3", "j4", "j5", "j6"] and not rest.next_page_token
        states = pb.ListJourneysRequest(states=[pb.JOURNEY_STATE_DRAFT], page={"page_size": 7})
        assert len(journeys.ListJourneys(states).journeys) == 7
