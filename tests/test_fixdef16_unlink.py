"""Walk 2026-12-06 finding 8: UnlinkIdentity of a profile's only customer number is refused (FAILED_PRECONDITION,
CUSTOMER_ID_ANCHORS_PROFILE): it used to move the number to a new, empty profile and leave the attributes, tags and
history on one that no customer number (nor an erasure by it) reaches. A device is still unlinked. Real SQLite."""

from __future__ import annotations

from pathlib import Path

import pytest
from profile_helpers import ANONYMOUS, CUSTOMER, profile_app, profile_settings, ref

from svc_common.conditions import to_proto
from svc_common.errors import FailedPrecondition
from svc_common.pb.qiming.common.v1 import types_pb2


def test_the_only_customer_number_is_not_unlinked_and_a_device_still_is(tmp_path: Path) -> None:
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        profiles = app.profiles
        profile, _ = profiles.upsert_attributes(ref("h1"), {"branch": to_proto("sh")}, [], "crm", frozenset())
        with pytest.raises(FailedPrecondition) as refused:
            profiles.unlink(types_pb2.Identity(type=CUSTOMER, value="h1"))
        assert refused.value.reason == "CUSTOMER_ID_ANCHORS_PROFILE"
        assert "unlink the device's id instead" in refused.value.message and "DeleteProfile" in refused.value.message
        kept = profiles.get(ref("h1"), ["attributes"], frozenset())
        assert kept.profile_id == profile.profile_id and kept.attributes["branch"].string_value == "sh"

        profiles.link(ref("h1"), types_pb2.Identity(type=ANONYMOUS, value="dev-1"), "", frozenset())
        with pytest.raises(FailedPrecondition):  # the device does not make the number detachable
            profiles.unlink(types_pb2.Identity(type=CUSTOMER, value="h1"))
        moved = profiles.unlink(types_pb2.Identity(type=ANONYMOUS, value="dev-1"))
        assert moved != profile.profile_id
        assert profiles.get(ref("dev-1", ANONYMOUS), [], frozenset()).profile_id == moved
        assert profiles.get(ref("h1"), ["attributes"], frozenset()).profile_id == profile.profile_id
        profiles.delete(ref("h1"), "PIPL-123")  # an erasure by the number reaches the customer's data
        with pytest.raises(Exception, match="no profile"):
            profiles.get(ref("h1"), [], frozenset())


def test_a_profiles_only_id_of_any_kind_is_not_unlinked(tmp_path: Path) -> None:
    """A prospect known by one device only: detaching that id would leave the behaviour collected under it on a profile
    no id reaches (ID_ANCHORS_PROFILE); with a second id either one can be detached."""
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        profiles = app.profiles
        device = ref("dev-only", ANONYMOUS)
        profile, _ = profiles.upsert_attributes(device, {"branch": to_proto("bj")}, [], "crm", frozenset())
        with pytest.raises(FailedPrecondition) as refused:
            profiles.unlink(types_pb2.Identity(type=ANONYMOUS, value="dev-only"))
        assert refused.value.reason == "ID_ANCHORS_PROFILE" and "DeleteProfile" in refused.value.message
        assert profiles.get(device, [], frozenset()).profile_id == profile.profile_id
        profiles.link(device, types_pb2.Identity(type=ANONYMOUS, value="dev-two"), "", frozenset())
        assert profiles.unlink(types_pb2.Identity(type=ANONYMOUS, value="dev-only")) != profile.profile_id
        assert profiles.get(ref("dev-two", ANONYMOUS), ["attributes"], frozenset()).profile_id == profile.profile_id
