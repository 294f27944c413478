import pytest
from campaign_helpers import EMAIL, campaign_service

from svc_campaign.policy import default_policy
from svc_common.errors import InvalidArgument
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb


def test_update_policy_refuses_a_quiet_hours_rule_that_starts_when_it_ends(tmp_path) -> None:
    with campaign_service(tmp_path) as service:
        policy = default_policy()
        policy.quiet_hours.add(channels=[EMAIL], start=pb.TimeOfDay(hour=9, timezone="UTC"), end=pb.TimeOfDay(hour=9))
        with pytest.raises(InvalidArgument, match=r"policy\.quiet_hours\[1\].*00:00-23:59"):
            service.update_policy(policy, 0)
        policy.quiet_hours[1].end.hour = 10
        assert service.update_policy(policy, 0).version == 2  # the defaults are version 1


def test_the_defaults_are_version_1_so_the_first_edit_is_guarded_too(tmp_path) -> None:
    """Walk walkcamp (minor): the defaults read as version 0, and ``expected_version`` 0 means "whatever is there",
    so two operators editing the defaults both succeeded, the second overwriting the first unseen."""
    from svc_common.errors import Aborted

    with campaign_service(tmp_path) as service:
        read = service.get_policy()
        assert read.version == 1
        first, second = pb.ContactPolicy(), pb.ContactPolicy()
        first.CopyFrom(read)
        second.CopyFrom(read)
        first.max_marketing_per_day = 3
        assert service.update_policy(first, read.version).version == 2
        second.max_marketing_per_day = 1
        with pytest.raises(Aborted, match="version 2, not 1"):
            service.update_policy(second, read.version)
        assert service.get_policy().max_marketing_per_day == 3


@pytest.mark.parametrize("edits_before", [0, 1])
def test_two_edits_of_the_same_version_at_once_cannot_both_win(database_url_postgresql, tmp_path, edits_before) -> None:
    """review17b: on PostgreSQL two edits that read the same version both stored theirs (a plain read, then an
    upsert), each answered the same new version: the second overwrote the first unseen. The write is now a
    compare-and-set: one wins, the other is ABORTED (the first edit of the defaults, and a later one)."""
    import threading

    from svc_common.errors import Aborted

    with campaign_service(tmp_path, database_url_postgresql) as service:
        for _ in range(edits_before):
            service.update_policy(service.get_policy(), 0)
        read = service.get_policy()
        barrier = threading.Barrier(2)
        store = service.policy_store
        read_version = store.policy_version

        def both_read_first(conn):  # each transaction has read the version before either writes
            version = read_version(conn)
            barrier.wait(timeout=20)
            return version

        store.policy_version = both_read_first
        results: list[str] = []

        def edit(cap: int) -> None:
            policy = pb.ContactPolicy()
            policy.CopyFrom(read)
            policy.max_marketing_per_day = cap
            try:
                results.append(f"ok {service.update_policy(policy, read.version).version}")
            except Aborted:
                results.append("aborted")

        threads = [threading.Thread(target=edit, args=(cap,)) for cap in (3, 5)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        store.policy_version = read_version
        assert sorted(results) == ["aborted", f"ok {read.version + 1}"]
        assert service.get_policy().version == read.version + 1
