"""The names that are level 3 (JR/T 0158) unless configured otherwise, in one place: svc_collect protects such event
properties, svc_profile such attributes, and svc_campaign refuses templates and branches naming any of them."""

from __future__ import annotations

# Property names that are level 3 (JR/T 0158) when no schema says otherwise: protected by default, so an
# event type nobody registered cannot leak an ID number or a phone into the log in clear text.
DEFAULT_SENSITIVE_PROPERTIES = (
    "id_number",
    "id_card",
    "identity_number",
    "passport_number",
    "phone",
    "mobile",
    "phone_number",
    "email",
    "bank_card",
    "bank_account",
    "card_number",
    "fund_account",
    "capital_account",
    "securities_account",
    "account_number",
    "password",
    "address",
    "real_name",
    "amount",
    "amount_fen",
    "balance",
    "balance_fen",
    "asset",
    "assets_fen",
    "aum_fen",
    "order_price",
    "order_quantity",
    # Names Chinese brokers' back-office and CRM extracts commonly use for the same data.
    "tel",
    "mobile_no",
    "phone_no",
    "cert_no",
    "id_no",
    "idcard",
    "acct",
    "total_asset",
)

# Profile attribute names at level 3 besides every ``*_fen`` amount: the same names as event properties (an attribute
# is often an event property's value, e.g. a KYC extract's ``bank_card``), and the declared income.
DEFAULT_SENSITIVE_ATTRIBUTES = (*DEFAULT_SENSITIVE_PROPERTIES, "annual_income")
