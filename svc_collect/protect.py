"""Level 3+ values (JR/T 0158) never reach the log in clear text.

Per property, by its schema (or, for unclassified properties, the configured sensitive names):
ENCRYPT moves the value into one SM4-GCM sealed blob per event, bound to the event id; PSEUDONYMIZE
replaces a string by its keyed HMAC-SM3 pseudonym (equality still works); DROP removes it. The client
IP in the context is always sealed; fund-account and phone ids are pseudonymized.

Personal data no schema declares (a mobile, identity or bank card number, an e-mail address in a free-text string
property or a context field) is found by content (``svc_common.protection._detect``) and, by the ``undeclared_pii``
policy, sealed like a level-3 value, masked in place, or the event rejected to quarantine.
"""

from __future__ import annotations

from collections.abc import Sequence

from svc_collect._native import fastcheck
from svc_collect.validation import CONTEXT_IP_TAG, CompiledSchema, Rejection, has_field
from svc_common.pb.qiming.common.v1 import errors_pb2, event_pb2, types_pb2
from svc_common.protection import (
    SIGNED_EVENT_TYPES,
    KeyProvider,
    Pseudonymizer,
    Sealer,
    find_personal_data,
    mask_personal_data,
    may_hold_personal_data,
)
from svc_common.protection._detect import KIND_WORDS

ENCRYPT = types_pb2.PROTECTION_MODE_ENCRYPT
PSEUDONYMIZE = types_pb2.PROTECTION_MODE_PSEUDONYMIZE
DROP = types_pb2.PROTECTION_MODE_DROP
NONE = types_pb2.PROTECTION_MODE_NONE
CONTEXT_IP = "context.ip"
SEAL, MASK, REJECT, OFF = "seal", "mask", "reject", "off"
which_oneof = types_pb2.Value.WhichOneof

# Pseudonym namespaces: the same number as a phone property and as a phone id must match.
_NAMESPACE = {
    "phone": "phone",
    "mobile": "phone",
    "phone_number": "phone",
    "fund_account": "fund_account",
    "capital_account": "fund_account",
}
_PSEUDONYMIZED_IDS = {
    types_pb2.ID_TYPE_FUND_ACCOUNT: "fund_account",
    types_pb2.ID_TYPE_PHONE_PSEUDONYM: "phone",
}


class UndeclaredPersonalData(Exception):
    """An event refused under ``undeclared_pii = "reject"``: ``rejection`` names the fields, never the values."""

    def __init__(self, rejection: Rejection) -> None:
        super().__init__(rejection.message)
        self.rejection = rejection


def holds_pseudonym(value: types_pb2.Value) -> bool:
    """Whether a property's value is a pseudonym already (``ps1:`` and 32 hex digits): protected, left as it is."""
    return value.WhichOneof("kind") == "string_value" and Pseudonymizer.is_pseudonym(value.string_value)


class EventProtector:
    def __init__(
        self,
        keys: KeyProvider,
        sensitive_properties: tuple[str, ...],
        undeclared_pii: str = SEAL,
        native: bool = True,
    ) -> None:
        """``native``: the first look for undeclared personal data in C where the install has the collector's C
        extension (the same answers; ``native_checks``)."""
        if undeclared_pii not in (SEAL, MASK, REJECT, OFF):
            raise ValueError(f"undeclared_pii must be seal, mask, reject or off, not {undeclared_pii!r}")
        self._may_hold = (
            fastcheck.may_hold_personal_data if native and fastcheck is not None else may_hold_personal_data
        )
        self._sealer = Sealer(keys)
        self._pseudonyms = Pseudonymizer(keys)
        self._undeclared = None if undeclared_pii == OFF else undeclared_pii
        self._default_modes = {name: ENCRYPT for name in sensitive_properties}
        self._modes_by_schema: dict[tuple[str, int], dict[str, int]] = {}

    @property
    def sealer(self) -> Sealer:
        return self._sealer

    def pseudonymize(self, namespace: str, value: str) -> str:
        return self._pseudonyms.pseudonymize(namespace, value)

    def modes_for(self, schema: CompiledSchema | None) -> dict[str, int]:
        """Protection mode per property name: the schema's word wins over the default sensitive names."""
        if schema is None:
            return self._default_modes
        key = (schema.event_type, schema.version)
        modes = self._modes_by_schema.get(key)
        if modes is None and schema.unusable:
            # A version this release cannot apply: every property it declares is withheld from masked reads and the
            # masked quarantine listing (its rules, and so their protection, are not known).
            modes = dict(self._default_modes) | dict.fromkeys((p.name for p in schema.proto.properties), ENCRYPT)
            self._modes_by_schema[key] = modes
        if modes is None:
            modes = dict(self._default_modes)
            for name, rule in schema.rules.items():
                if rule.protection == NONE:
                    modes.pop(name, None)
                else:
                    modes[name] = rule.protection
            self._modes_by_schema[key] = modes
        return modes

    def protect(
        self,
        event: event_pb2.Event,
        schema: CompiledSchema | None,
        names: Sequence[str] | None = None,
        identities: bool | None = None,
        encoded: bytes | None = None,
    ) -> tuple[bytes | None, bool]:
        """Protect ``event`` in place. Returns the sealed blob of its encrypted values (or None) and whether
        the event changed. ``names`` (its property names), ``identities`` (whether it has any) and ``encoded`` (its
        encoding), when the caller already has them, spare reading the message again."""
        modes = self._default_modes if schema is None else self.modes_for(schema)
        if names is None:
            names = sorted(event.properties)  # the order EventValidator.check gives them in
        # Undeclared personal data: one C-level look at the encoding says "none" for nearly every event.
        found: list[tuple[str, str]] = []
        policy = self._undeclared
        if policy is not None:
            data = event.SerializeToString() if encoded is None else encoded
            if self._may_hold(data) and may_hold_beside_ids(event, data, identities):
                found = self.undeclared_in(event, modes, names)
            if found and policy == REJECT:
                raise UndeclaredPersonalData(_rejection(found))  # before anything in the event changed
        if identities is None:
            identities = bool(event.identities)
        changed = self._pseudonymize_ids(event) if identities else False
        # Most events carry nothing sensitive: one C-level pass over the names says so.
        hits = [name for name in names if name in modes] if not modes.keys().isdisjoint(names) else ()
        has_ip = (
            (encoded is None or CONTEXT_IP_TAG in encoded) and has_field(event, "context") and bool(event.context.ip)
        )
        if not hits and not has_ip and not found:
            return None, changed
        properties = event.properties
        vault = event_pb2.Event()
        sealed_properties = vault.properties
        masked: list[str] = []  # one extend of event.masked_fields at the end: each read of it builds a container
        if found:
            if policy == SEAL:
                self._seal_found(event, vault, found, masked)
            else:
                _mask_found(event, found)
            changed = True
        for name in hits:
            mode = modes[name]
            if mode == ENCRYPT:
                sealed_properties[name].CopyFrom(properties[name])
                masked.append(name)
                del properties[name]
            elif mode == PSEUDONYMIZE:
                value = properties[name]
                if value.WhichOneof("kind") == "string_value" and not holds_pseudonym(value):
                    value.string_value = self._pseudonyms.pseudonymize(_NAMESPACE.get(name, name), value.string_value)
            elif mode == DROP:
                del properties[name]
                event.flags.append(f"dropped:{name}")
        if has_ip:
            vault.context.ip = event.context.ip
            event.context.ClearField("ip")
            masked.append(CONTEXT_IP)
        if not masked:
            return None, True
        event.masked_fields.extend(masked)
        return self._sealer.seal(vault.SerializeToString(), event.event_id.encode()), True

    def unmask(self, event: event_pb2.Event, sealed: bytes) -> None:
        """Put the sealed values back into ``event`` (for a reader allowed to see them)."""
        vault = event_pb2.Event.FromString(self._sealer.open(sealed, event.event_id.encode()))
        for name, value in vault.properties.items():
            event.properties[name].CopyFrom(value)
        if vault.HasField("context"):  # the ip, and context fields sealed for undeclared personal data
            event.context.MergeFrom(vault.context)
        del event.masked_fields[:]

    def mask_copy(self, event: event_pb2.Event, schema: CompiledSchema | None) -> event_pb2.Event:
        """A copy of a raw (quarantined) event with level 3+ values withheld, for readers who may not see them, listed
        in ``masked_fields`` in the order protect() lists them under ``undeclared_pii = "seal"``: undeclared personal
        data first (withheld and listed whatever the policy), then the declared level 3+ properties by name, then the
        ip. Fields its messages do not declare are left out: nothing can say what they hold (unknown_fields.py)."""
        masked = event_pb2.Event()
        masked.CopyFrom(event)
        masked.DiscardUnknownFields()
        modes = self.modes_for(schema)
        if self._undeclared is not None:  # whatever the policy, a quarantined event's found values are withheld
            for field, _ in self.undeclared_in(masked, modes, sorted(masked.properties)):
                if field.startswith("context."):
                    masked.context.ClearField(field.removeprefix("context."))
                else:
                    del masked.properties[field]
                masked.masked_fields.append(field)
        for name in sorted(n for n in masked.properties if n in modes):  # name order, as protect() lists them
            del masked.properties[name]
            masked.masked_fields.append(name)
        if masked.HasField("context") and masked.context.ip:
            masked.context.ClearField("ip")
            masked.masked_fields.append(CONTEXT_IP)
        self._pseudonymize_ids(masked)
        return masked

    def undeclared_in(
        self, event: event_pb2.Event, modes: dict[str, int], names: Sequence[str]
    ) -> list[tuple[str, str]]:
        """(field, kind) of each string property not protected by ``modes`` and each context field (the ip is
        always sealed) that holds personal data: the property's name, or ``context.<field>``; the first kind found.
        System events svc_profile and svc_campaign sign are left alone: a changed property would fail their
        signature."""
        if event.event_type in SIGNED_EVENT_TYPES:
            return []
        found: list[tuple[str, str]] = []
        properties = event.properties
        for name in names:
            if name in modes:
                continue
            value = properties[name]
            kind = which_oneof(value, "kind")
            if kind == "string_value":
                texts: Sequence[str] = (value.string_value,)
            elif kind == "string_list_value":
                texts = value.string_list_value.values
            else:
                continue
            for text in texts:
                if hits := find_personal_data(text):
                    found.append((name, hits[0].kind))
                    break
        if has_field(event, "context"):
            for descriptor, text in event.context.ListFields():
                if descriptor.name != "ip" and (hits := find_personal_data(text)):
                    found.append((f"context.{descriptor.name}", hits[0].kind))
        return found

    @staticmethod
    def _seal_found(
        event: event_pb2.Event, vault: event_pb2.Event, found: list[tuple[str, str]], masked: list[str]
    ) -> None:
        """Found values go into the event's sealed blob, as a level-3 property's (or the ip's) would."""
        for field, _ in found:
            if field.startswith("context."):
                name = field.removeprefix("context.")
                setattr(vault.context, name, getattr(event.context, name))
                event.context.ClearField(name)
            else:
                vault.properties[field].CopyFrom(event.properties[field])
                del event.properties[field]
            masked.append(field)
            event.flags.append(f"personal_data_sealed:{field}")

    def _pseudonymize_ids(self, event: event_pb2.Event) -> bool:
        """Fund-account and phone ids become pseudonyms; True if any changed."""
        changed = False
        for identity in event.identities:
            namespace = _PSEUDONYMIZED_IDS.get(identity.type)
            if namespace and not Pseudonymizer.is_pseudonym(identity.value):
                identity.value = self._pseudonyms.pseudonymize(namespace, identity.value)
                changed = True
        return changed


def may_hold_beside_ids(event: event_pb2.Event, data: bytes, identities: bool | None = True) -> bool:
    """The event pre-filter again without the event's ids of 11 characters or more: a customer number, fund account
    or device id of digits would otherwise send each of its events to the search of every string value (several µs),
    where they are never looked for (identities are not searched; docs/collect.md). ``identities``: whether the event
    has any in its list (False spares reading it).

    Each id is taken out once, its first occurrence, in the order of the fields' numbers (``anonymous_id`` 5,
    ``user_id`` 6, ``identities`` 7, ``session_id`` 8): an encoding holds its fields in that order, before
    ``properties`` (10) and ``context`` (11), so the first occurrence of each value is at or before its own field,
    never in a property or the context. Until 0.2.10 every occurrence was taken out, a property's too: a phone number
    sent both as an identity and in a comment, or an id card number holding the user id, went unsearched and was
    stored in clear (walk, session 27)."""
    stripped = data
    values = [event.anonymous_id, event.user_id]
    if identities is not False:
        values += [identity.value for identity in event.identities]
    values.append(event.session_id)
    for value in values:
        if len(value) > 10:
            stripped = stripped.replace(value.encode(), b"", 1)
    return stripped is data or may_hold_personal_data(stripped)


def _mask_found(event: event_pb2.Event, found: list[tuple[str, str]]) -> None:
    """Each found value replaced in place by its fixed mask; the event is flagged ``personal_data_masked:<field>``."""
    for field, _ in found:
        if field.startswith("context."):
            name = field.removeprefix("context.")
            text = getattr(event.context, name)
            setattr(event.context, name, mask_personal_data(text, find_personal_data(text)))
        else:
            value = event.properties[field]
            if which_oneof(value, "kind") == "string_value":
                text = value.string_value
                value.string_value = mask_personal_data(text, find_personal_data(text))
            else:
                items = value.string_list_value.values
                items[:] = [mask_personal_data(text, find_personal_data(text)) for text in items]
        event.flags.append(f"personal_data_masked:{field}")


def _rejection(found: list[tuple[str, str]]) -> Rejection:
    """UNDECLARED_PERSONAL_DATA naming the fields and what was found in them; the values themselves never."""
    where = ", ".join(f"{field} ({KIND_WORDS[kind]})" for field, kind in found)
    first = found[0][0]
    return Rejection(
        errors_pb2.ERROR_REASON_UNDECLARED_PERSONAL_DATA,
        first if first.startswith("context.") else f"properties.{first}",
        f"personal data in fields the event's schema does not declare at level 3+: {where}. Declare the property"
        " at sensitivity 3 (it is then sealed) or stop sending it, then replay",
    )
