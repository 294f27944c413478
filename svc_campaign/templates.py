"""Message templates: saved only when compliant (no prohibited investment-marketing claims, the risk disclosure of
a promoted product, no level 3+ placeholder), versioned, checked and rendered on request. Mixed into
:class:`svc_campaign.service.CampaignService`."""

from __future__ import annotations

import uuid
from typing import Any

from google.protobuf import json_format

from svc_campaign.checks import ID_PATTERN, bad, customer_id
from svc_campaign.content import RenderRefused, check_template, render
from svc_common.conditions import from_proto
from svc_common.errors import Aborted, AlreadyExists, FailedPrecondition, FieldViolation, InvalidArgument, NotFound
from svc_common.pb.qiming.campaign.v1 import campaign_pb2 as pb


class TemplateBook:
    """Needs ``self.db``, ``self.template_store`` (a :class:`svc_campaign.store.TemplateStore`), ``self.clock``,
    ``self.settings``, ``self.walker`` and ``self.profiles``."""

    # -- templates ------------------------------------------------------------------------------------

    def _template_findings(self, template: pb.Template) -> list[Any]:
        with self.db.connection() as conn:
            policy = self.walker.policy(conn)
        return check_template(template, policy.extra_prohibited_phrases, self.settings.sensitive_fields)

    def _refuse(self, template: pb.Template) -> None:
        findings = self._template_findings(template)
        if findings:
            first = findings[0]
            reason = "MISSING_RISK_DISCLOSURE" if first.code == "missing_risk_disclosure" else "PROHIBITED_CONTENT"
            raise InvalidArgument(
                f"template.{first.field}: {first.message}",
                reason=reason,
                violations=[FieldViolation(f"template.{f.field}", f.message, f.code.upper()) for f in findings],
            )

    def _check_template_fields(self, template: pb.Template) -> None:
        if not template.name:
            raise bad("template.name", "name the template")
        if template.channel not in pb.ChannelType.values():
            raise bad("template.channel", "not a channel")
        if not template.body:
            raise bad("template.body", "the body is empty")
        for field in ("name", "title", "body", "link", "risk_disclosure"):
            if "\x00" in getattr(template, field):
                # No channel delivers it, and PostgreSQL's text refuses it: every send of the template failed its
                # log batch at every retry, stopping every journey (before 0.2.9).
                raise bad(f"template.{field}", "holds a NUL character (U+0000)")
        if template.product.risk_level > 5:
            raise bad("template.product.risk_level", "product risk levels are R1-R5")
        if template.product.product_id and not template.product.risk_level:
            # Suitability matches the product's level to the customer's risk rating: without it the check is skipped.
            raise bad("template.product.risk_level", "a template that promotes a product needs its risk level (R1-R5)")

    def create_template(self, template: pb.Template) -> pb.Template:
        self._check_template_fields(template)
        template_id = template.template_id or str(uuid.uuid4())
        if not ID_PATTERN.match(template_id):
            raise bad("template.template_id", "letters, digits, '_', '.', '-' (at most 64)")
        self._refuse(template)
        now = self.clock.now()
        saved = pb.Template()
        saved.CopyFrom(template)
        saved.template_id, saved.version = template_id, 1
        saved.created_at.FromDatetime(now)
        saved.updated_at.FromDatetime(now)
        with self.db.connection(write=True) as conn:
            if self.template_store.exists(conn, template_id):
                raise AlreadyExists(f"template {template_id!r} already exists")
            self.template_store.add(conn, template_id, json_format.MessageToDict(saved), saved.channel, now)
        return saved

    def update_template(self, template: pb.Template, expected_version: int) -> pb.Template:
        current = self.get_template(template.template_id)
        if expected_version and expected_version != current.version:
            raise Aborted(f"template {template.template_id!r} is at version {current.version}, not {expected_version}")
        self._check_template_fields(template)
        self._refuse(template)
        now = self.clock.now()
        saved = pb.Template()
        saved.CopyFrom(template)
        saved.version = current.version + 1
        saved.created_at.CopyFrom(current.created_at)
        saved.updated_at.FromDatetime(now)
        with self.db.connection(write=True) as conn:
            document = json_format.MessageToDict(saved)
            self.template_store.replace(
                conn, template.template_id, current.version, document, saved.channel, saved.version, now
            )
        self.walker.invalidate()
        return saved

    def get_template(self, template_id: str) -> pb.Template:
        with self.db.connection() as conn:
            document = self.template_store.document(conn, template_id)
        if document is None:
            raise NotFound(f"no template {template_id!r}", metadata={"template_id": template_id})
        return json_format.ParseDict(document, pb.Template())

    def list_templates(self, channel: int, after: str, limit: int) -> list[pb.Template]:
        with self.db.connection() as conn:
            return [
                json_format.ParseDict(d, pb.Template())
                for d in self.template_store.documents(conn, channel, after, limit)
            ]

    def check_content(self, template: pb.Template) -> pb.CheckContentResponse:
        findings = self._template_findings(template)
        return pb.CheckContentResponse(compliant=not findings, findings=[f.to_proto() for f in findings])

    def render_template(self, request: pb.RenderTemplateRequest) -> pb.RenderTemplateResponse:
        template = self.get_template(request.template_id)
        user = customer_id(request.user)
        event = {k: from_proto(v, f"event_properties[{k}]") for k, v in request.event_properties.items()}
        try:
            title, body, link = render(template, self.profiles.get(user), event, self.settings.sensitive_fields)
        except RenderRefused as exc:
            raise FailedPrecondition(f"template {template.template_id!r}: {exc}", reason="SENSITIVE_FIELD") from None
        return pb.RenderTemplateResponse(title=title, body=body, link=link)
