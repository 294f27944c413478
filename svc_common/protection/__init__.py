"""Protection of sensitive values (JR/T 0158 level 3+): SM4-GCM encryption at rest, keyed HMAC-SM3
pseudonyms where only equality is needed, HMAC-SM3 signatures on the system events svc_profile and svc_campaign
publish, and the keyring they all draw their keys from."""

from svc_common.protection._detect import (
    PERSONAL_DATA_KINDS,
    Found,
    find_personal_data,
    mask_personal_data,
    may_hold_personal_data,
)
from svc_common.protection._keys import (
    FileKeyProvider,
    JsonKeyProvider,
    KeyProvider,
    Keyring,
    generate_keyring,
    key_provider_from_settings,
)
from svc_common.protection._levels import DEFAULT_SENSITIVE_ATTRIBUTES, DEFAULT_SENSITIVE_PROPERTIES
from svc_common.protection._signing import (
    PUBLISHERS,
    SIGNATURE_PROPERTY,
    SIGNED_EVENT_TYPES,
    SIGNED_PROPERTIES,
    SystemEventSigner,
    is_signed,
    publisher_of,
)
from svc_common.protection._sm import Fingerprinter, Pseudonymizer, Sealer, SealError, normalize_pseudonym_input

__all__ = [
    "DEFAULT_SENSITIVE_ATTRIBUTES",
    "DEFAULT_SENSITIVE_PROPERTIES",
    "PERSONAL_DATA_KINDS",
    "PUBLISHERS",
    "SIGNATURE_PROPERTY",
    "SIGNED_EVENT_TYPES",
    "SIGNED_PROPERTIES",
    "FileKeyProvider",
    "Fingerprinter",
    "Found",
    "JsonKeyProvider",
    "KeyProvider",
    "Keyring",
    "Pseudonymizer",
    "SealError",
    "Sealer",
    "SystemEventSigner",
    "find_personal_data",
    "generate_keyring",
    "is_signed",
    "key_provider_from_settings",
    "mask_personal_data",
    "may_hold_personal_data",
    "normalize_pseudonym_input",
    "publisher_of",
]
