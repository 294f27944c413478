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
