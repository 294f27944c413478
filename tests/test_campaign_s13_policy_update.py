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
        assert service.update_policy(policy, 0).version == 1
