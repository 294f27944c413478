"""svc_campaign's default sensitive fields hold svc_profile's sensitive attributes and svc_collect's sensitive
properties, so a template naming one is refused when saved (the operator review: `{{attribute.real_name}}`,
`{{attribute.annual_income}}` and `{{event.id_card}}` were saved, then failed at render or were suppressed at send)."""

from __future__ import annotations

import pytest
from campaign_helpers import add_template, campaign_service

from svc_campaign.config import CampaignSettings
from svc_collect.config import CollectSettings
from svc_common.errors import InvalidArgument
from svc_profile.config import ProfileSettings


def test_the_default_sensitive_fields_cover_the_other_services_defaults() -> None:
    fields = set(CampaignSettings().sensitive_fields)
    assert set(ProfileSettings().sensitive_attributes) <= fields
    assert set(CollectSettings().sensitive_properties) <= fields


@pytest.mark.parametrize(
    "placeholder", ["{{attribute.real_name|客户}}", "{{attribute.annual_income|0}}", "{{event.id_card|无}}"]
)
def test_a_template_naming_a_field_another_service_protects_is_refused_at_save(tmp_path, placeholder) -> None:
    with campaign_service(tmp_path, None) as service:
        with pytest.raises(InvalidArgument, match="level 3"):
            add_template(service, "leak", body=f"您好 {placeholder}")
        add_template(service, "fine", body="您好 {{attribute.branch|客户}}")
