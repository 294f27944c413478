"""Level 3+ values (JR/T 0158) never reach the log in clear text.

Per property, by its schema (or, for unclassified properties, the configured sensitive names):
ENCRYPT moves the value into one SM4-GCM sealed blob per event, bound to the event id; PSEUDONYMIZE
replaces a string by its keyed HMAC-SM3 pseudonym (equality still works); DROP removes it. The client
IP in the context is always sealed; fund-account and phone ids are pseudonymized.
"""

from __future__ import annotations

from collections.abc import Sequence

from svc_collect.validation import CONTEXT_IP_TAG, CompiledSchema, has_field
from svc_common.pb.qiming.common.v1 import event_pb2, types_pb2
from svc_common.protection import KeyProvider, Pseudonymizer, Sealer

ENCRYPT = types_pb2.PROTECTION_MODE_ENCRYPT
PSEUDONYMIZE = types_pb2.PROTECTION_MODE_PSEUDONYMIZE
DROP = types_pb2.PROTECTION_MODE_DROP
NONE = types_pb2.PROTECTION_MODE_NONE
CONTEXT_IP = "context.ip"

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


class EventProtector:
    def __init__(self, keys: KeyProvider, sensitive_properties: tuple[str, ...]) -> None:
        self._sealer = Sealer(keys)
        self._pseudonyms = Pseudonymizer(keys)
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
        if identities is None:
            identities = bool(event.identities)
        changed = self._pseudonymize_ids(event) if identities else False
        modes = self._default_modes if schema is None else self.modes_for(schema)
        if names is None:
            names = list(event.properties)
        # Most events carry nothing sensitive: one C-level pass over the names says so.
        hits = [name for name in names if name in modes] if not modes.keys().isdisjoint(names) else ()
        has_ip = (
            (encoded is None or CONTEXT_IP_TAG in encoded) and has_field(event, "context") and bool(event.context.ip)
        )
        if not hits and not has_ip:
            return None, changed
        properties = event.properties
        vault = event_pb2.Event()
        sealed_properties = vault.properties
        masked: list[str] = []  # one extend of event.masked_fields at the end: each read of it builds a container
        for name in hits:
            mode = modes[name]
            if mode == ENCRYPT:
                sealed_properties[name].CopyFrom(properties[name])
                masked.append(name)
                del properties[name]
            elif mode == PSEUDONYMIZE:
                value = properties[name]
                if value.WhichOneof("kind") == "string_value" and not Pseudonymizer.is_pseudonym(value.string_value):
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
        if vault.HasField("context") and vault.context.ip:
            event.context.ip = vault.context.ip
        del event.masked_fields[:]

    def mask_copy(self, event: event_pb2.Event, schema: CompiledSchema | None) -> event_pb2.Event:
        """A copy of a raw (quarantined) event with level 3+ values withheld, for readers who may not see them."""
        masked = event_pb2.Event()
        masked.CopyFrom(event)
        modes = self.modes_for(schema)
        for name in [n for n in masked.properties if n in modes]:
            del masked.properties[name]
            masked.masked_fields.append(name)
        if masked.HasField("context") and masked.context.ip:
            masked.context.ClearField("ip")
            masked.masked_fields.append(CONTEXT_IP)
        self._pseudonymize_ids(masked)
        return masked

    def _pseudonymize_ids(self, event: event_pb2.Event) -> bool:
        """Fund-account and phone ids become pseudonyms; True if any changed."""
        changed = False
        for identity in event.identities:
            namespace = _PSEUDONYMIZED_IDS.get(identity.type)
            if namespace and not Pseudonymizer.is_pseudonym(identity.value):
                identity.value = self._pseudonyms.pseudonymize(namespace, identity.value)
                changed = True
        return changed
