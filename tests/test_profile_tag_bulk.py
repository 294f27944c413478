"""Bulk tag writes (svc_profile/store/_tagwrite.py): the one-statement path (SQLite json_each, PostgreSQL unnest)
stores exactly what the portable path (id lookup, then the store's upsert) stores, on both databases; a stream
whose groups are written while the next one arrives keeps the later write of a tag."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import grpc
import pytest
from profile_helpers import ANONYMOUS, CUSTOMER, profile_app, profile_settings, ref

from svc_common.conditions import Money, to_proto
from svc_common.pb.qiming.common.v1 import types_pb2
from svc_common.pb.qiming.profile.v1 import profile_pb2 as pb
from svc_profile.model import encode
from svc_profile.store import _tagwrite

MODEL = types_pb2.Provenance(source=types_pb2.Provenance.SOURCE_MODEL, writer="model:m", writer_version="7")
COLUMNS = ("name", "tag_value", "source", "writer", "writer_version", "written_us", "expires_us", "trace_id")


def external(name: str, value_type: int = types_pb2.VALUE_TYPE_DOUBLE) -> pb.TagDefinition:
    return pb.TagDefinition(name=name, value_type=value_type, external=pb.ExternalTag(writer="m"))


def stored(app, customers: list[str]) -> dict[tuple[str, str], tuple]:
    """(customer, tag) -> the stored tag row's columns, for the customers' persons."""
    core = app.core
    with core.database.connection() as conn:
        keys = {c: core.policy.ref(CUSTOMER, c, "user") for c in customers}
        owners = core.store.lookup_ids(conn, list(keys.values()))
        tags = core.store.load_tags(conn, [owners[k] for k in keys.values() if k in owners])
    return {
        (c, name): tuple(getattr(row, col) for col in COLUMNS)
        for c, key in keys.items()
        if key in owners
        for name, row in tags.get(owners[key], {}).items()
    }


def test_the_bulk_statement_stores_what_the_portable_path_stores(tmp_path: Path, database_url: str) -> None:
    customers = [f"C{i}" for i in range(9)]
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        for c in customers:
            app.profiles.upsert_attributes(ref(c), {"branch": to_proto("SH")}, [], "crm", frozenset())
        store = app.core.store
        key = {c: app.core.policy.ref(CUSTOMER, c, "user") for c in [*customers, "nobody"]}
        values: list[object] = [
            0.1 + 0.2,  # 17 significant digits
            -0.0,
            42,
            '低风险 "quoted"',
            Money(12345),
            dt.datetime(2026, 12, 4, 8, 30, tzinfo=dt.UTC),
            ("a", "b"),
            True,
            float("nan"),
        ]

        def writes(suffix: str) -> list[tuple[int, str, str, str, int | None]]:
            out = []
            for i, value in enumerate(values):
                c = customers[i]
                out.append((*key[c], f"t{i % 3}{suffix}", _tagwrite.encode_value(encode(value)), None))
            out.append((*key["nobody"], f"t0{suffix}", '["d",1.0]', None))  # no such person: reported, not written
            out.append((*key["C1"], f"t1{suffix}", '["d",0.25]', 1_900_000_000_000_000))  # an expiry
            out.append((*key["C1"], f"t1{suffix}", '["d",0.5]', None))  # the same tag again: the later wins
            return out

        shared = _tagwrite.Provenance("MODEL", "model:m", "7", 1_800_000_000_000_000, "trace")
        with app.core.writing() as conn:
            bulk_missing, bulk_persons = _tagwrite.write_values(store, conn, writes(""), shared, persons=True)
            portable_missing, portable_persons = _tagwrite._portable(store, conn, writes("_p"), shared)
        assert bulk_missing == portable_missing == [len(values)]
        assert bulk_persons == portable_persons and len(bulk_persons) == len(customers)
        rows = stored(app, customers)
        bulk = {k: v[1:] for k, v in rows.items() if not k[1].endswith("_p")}
        portable = {(c, name[:-2]): v[1:] for (c, name), v in rows.items() if name.endswith("_p")}
        assert len(bulk) == len(values)
        assert json.dumps(sorted(bulk.items())) == json.dumps(sorted(portable.items()))  # NaN included
        assert bulk[("C1", "t1")][0] == ["d", 0.5] and bulk[("C1", "t1")][5] is None
        assert bulk[("C0", "t0")][0] == ["d", 0.1 + 0.2] and bulk[("C3", "t0")][0] == ["s", '低风险 "quoted"']
        assert bulk[("C5", "t2")][0] == ["t", 1796373000000000] and bulk[("C6", "t0")][0] == ["l", ["a", "b"]]
        assert bulk[("C0", "t0")][1:] == ("MODEL", "model:m", "7", 1_800_000_000_000_000, None, "trace")


def test_a_group_reports_each_refused_write_and_keeps_the_later_of_two(tmp_path: Path, database_url: str) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        defs = app.definitions
        defs.create_tag(external("score"))
        defs.create_tag(external("label", types_pb2.VALUE_TYPE_STRING))
        for c in ("C1", "C2"):
            app.profiles.upsert_attributes(ref(c), {"branch": to_proto("SH")}, [], "crm", frozenset())
        writes = [
            pb.TagWrite(user=ref("C1"), tag_name="score", value=to_proto(0.9)),
            pb.TagWrite(user=ref("C2"), tag_name="missing_tag", value=to_proto(0.1)),
            pb.TagWrite(user=ref("nobody"), tag_name="score", value=to_proto(0.2)),
            pb.TagWrite(user=ref("C2"), tag_name="score"),  # no value
            pb.TagWrite(user=ref("guest"), tag_name="score", value=to_proto(0.3)),  # a placeholder id
            pb.TagWrite(user=ref("C2"), tag_name="label", value=to_proto("vip")),
            pb.TagWrite(user=ref("C1"), tag_name="score", value=to_proto(0.4)),  # C1 again: this one wins
        ]
        written, errors = app.tags.write_group(writes, MODEL, "trace-1", offset=100)
        assert written == 3
        assert [(i, reason) for i, reason, _, _ in errors] == [
            (101, "TAG_NOT_FOUND"),
            (102, "PROFILE_NOT_FOUND"),
            (103, "INVALID_ARGUMENT"),
            (104, "PLACEHOLDER_ID"),
        ]
        assert errors[1][2] == "writes[2].user" and "no tag definition 'missing_tag'" in errors[0][3]
        rows = stored(app, ["C1", "C2"])
        assert rows[("C1", "score")][1:5] == (["d", 0.4], "MODEL", "model:m", "7")
        assert rows[("C1", "score")][7] == "trace-1"
        assert rows[("C2", "label")][1] == ["s", "vip"] and ("C2", "score") not in rows


def test_a_stream_written_group_by_group_keeps_the_later_write(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from campaign_helpers import InProcessServer

    from svc_common.pb.qiming.profile.v1 import profile_pb2_grpc
    from svc_profile import server as profile_server
    from svc_profile.server import TagServicer

    monkeypatch.setattr(profile_server, "STREAM_GROUP_WRITES", 2)  # a group per message below
    with profile_app(profile_settings(tmp_path, finance_pack=False)) as app:
        app.definitions.create_tag(external("score"))
        for c in ("C1", "C2"):
            app.profiles.upsert_attributes(ref(c), {"branch": to_proto("SH")}, [], "crm", frozenset())
        server = InProcessServer(lambda s: profile_pb2_grpc.add_TagServiceServicer_to_server(TagServicer(app), s))
        try:
            with grpc.insecure_channel(server.address) as channel:
                tags = profile_pb2_grpc.TagServiceStub(channel)
                stream = [
                    pb.WriteTagsStreamRequest(
                        writes=[
                            pb.TagWrite(user=ref("C1"), tag_name="score", value=to_proto(float(k))),
                            pb.TagWrite(user=ref("C2" if k % 2 else "nobody"), tag_name="score", value=to_proto(1.0)),
                        ],
                        provenance=MODEL if k == 0 else None,
                    )
                    for k in range(20)
                ]
                reply = tags.WriteTagsStream(iter(stream), timeout=60)
        finally:
            server.close()
        assert reply.written_count == 30 and [e.row_index for e in reply.errors] == list(range(1, 40, 4))
        assert stored(app, ["C1"])[("C1", "score")][1] == ["d", 19.0]


@pytest.mark.parametrize("customer_last", [True, False])
def test_two_ids_of_one_person_in_one_group_keep_the_later_write(
    tmp_path: Path, database_url: str, customer_last: bool
) -> None:
    with profile_app(profile_settings(tmp_path, database_url, finance_pack=False)) as app:
        app.definitions.create_tag(external("score"))
        app.profiles.upsert_attributes(ref("C1"), {"branch": to_proto("SH")}, [], "crm", frozenset())
        core = app.core
        with core.writing() as conn:
            pid = core.find(conn, core.policy.ref(CUSTOMER, "C1", "user"))
            core.store.insert_links(
                conn,
                [
                    {
                        "id_value": "a-1",
                        "id_type": ANONYMOUS,
                        "profile_id": pid,
                        "linked_by": "test",
                        "linked_us": 0,
                        "source_ref": "",
                    }
                ],
            )
        by_customer = pb.TagWrite(user=ref("C1"), tag_name="score", value=to_proto(2.0))
        by_device = pb.TagWrite(user=ref("a-1", ANONYMOUS), tag_name="score", value=to_proto(1.0))
        writes = [by_device, by_customer] if customer_last else [by_customer, by_device]
        assert app.tags.write_group(writes, MODEL, "") == (2, [])
        assert stored(app, ["C1"])[("C1", "score")][1] == ["d", 2.0 if customer_last else 1.0]
