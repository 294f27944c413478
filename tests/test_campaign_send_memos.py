"""What a batch's sends remember from the send before (svc_campaign.policy, content, store._bulk): the compliance
verdict of the same template and policy objects, whether a template's texts hold placeholders, and the JSON
documents of the due timers read by the decoder's scanner. Each gives the answer it gave before, and a new template,
policy or text is judged afresh."""

from __future__ import annotations

import json

import pytest

from svc_campaign.content import render
from svc_campaign.policy import PolicyGate, default_policy
from svc_campaign.store import tables
from svc_campaign.store._bulk import _json_loads
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb


def _gate() -> PolicyGate:
    return PolicyGate(tables, default_zone="Asia/Shanghai", requires_opt_in=False, sensitive=[])


def test_compliance_is_judged_again_for_another_template_or_policy() -> None:
    gate = _gate()
    policy = default_policy()
    fine = pb.Template(template_id="t", version=1, title="新动态", body="点击查看")
    assert gate._compliant(fine, policy) is True
    assert gate._compliant(fine, policy) is True  # the same objects: the verdict remembered
    claim = pb.Template(template_id="t", version=2, title="新动态", body="保本高收益")  # a new version of it
    assert gate._compliant(claim, policy) is False
    stricter = default_policy()
    stricter.extra_prohibited_phrases.append("查看")
    stricter.version = 7
    assert gate._compliant(fine, stricter) is False  # the same template under another policy
    assert gate._compliant(fine, policy) is True


def test_placeholders_are_found_in_each_new_text() -> None:
    fixed = pb.Template(template_id="t", title="标题", body="固定")
    assert render(fixed, None, {}) == ("标题", "固定", "")
    assert render(fixed, None, {}) == ("标题", "固定", "")
    filled = pb.Template(template_id="t", title="标题", body="金额 {{event.amount}}")
    assert render(filled, None, {"amount": 12}) == ("标题", "金额 12", "")


@pytest.mark.parametrize(
    "text",
    ['{"node":"wait"}', '{"event":{"amount":12.5,"名":"值"},"event_id":"e1"}', "[1,2]", '"x"', "null", ' {"a":1} '],
)
def test_json_documents_read_as_json_loads_reads_them(text: str) -> None:
    assert _json_loads(text) == json.loads(text)


@pytest.mark.parametrize("text", ["{", '{"a":1}x', "", "{'a':1}"])
def test_json_documents_refused_as_json_loads_refuses_them(text: str) -> None:
    with pytest.raises(json.JSONDecodeError):
        _json_loads(text)
