"""X+O fusion: survey answers (experience data) joined to operational data by customer id."""

from __future__ import annotations

import pandas as pd

from svc_common.errors import FailedPrecondition
from svc_common.pb.qiming.modeling.v1 import modeling_pb2
from svc_modeling.frame import Frame
from svc_modeling.methods.checks import shown


def fuse(survey: Frame, survey_id: str, operations: Frame, operations_id: str, join: str) -> Frame:
    """One row per survey answer with the customer's operational columns beside it.

    A column name both sides use is kept from the survey and suffixed ``_ops`` (``_ops2``, ... when that is
    taken too) from operations. Operations rows must be unique per customer (a survey answer must not be
    duplicated by the join). A missing customer id matches nothing: an operations row without one is left
    out, and a survey answer without one gets empty operational columns (``left``) or is left out (``inner``).
    """
    ops_ids = operations.data[operations_id]
    duplicated = ops_ids[ops_ids.duplicated()].dropna()
    if len(duplicated):
        example = shown(operations, operations_id, duplicated.iloc[0])
        raise FailedPrecondition(
            f"operations data has {len(duplicated)} repeated customer ids (e.g. {example}): "
            "keep one row per customer before fusing",
            reason="FAILED_PRECONDITION",
        )
    rename = {}
    columns: list[modeling_pb2.Column] = []
    for spec in survey.columns:
        column = modeling_pb2.Column()
        column.CopyFrom(spec)
        columns.append(column)
    taken = {c.name for c in survey.columns}
    for spec in operations.columns:
        if spec.name == operations_id:
            continue
        name = spec.name
        suffix = 1
        while name in taken:
            name = f"{spec.name}_ops" + (str(suffix) if suffix > 1 else "")
            suffix += 1
        taken.add(name)
        rename[spec.name] = name
        column = modeling_pb2.Column()
        column.CopyFrom(spec)
        column.name = name
        columns.append(column)
    left = survey.data.assign(__key=survey.data[survey_id].astype(object).map(_key))
    right = operations.data.rename(columns=rename).drop(columns=[operations_id])
    right = right.assign(__key=operations.data[operations_id].astype(object).map(_key))
    # pandas matches a missing key with a missing key: an anonymous answer would be glued to other people's rows
    right = right[right["__key"].notna()]
    left = left.assign(__key=left["__key"].map(lambda k: _NO_MATCH if k is None else k))
    merged = left.merge(right, on="__key", how=join, sort=False).drop(columns=["__key"]).reset_index(drop=True)
    for column in columns:
        if merged[column.name].dtype != object and column.type == 1:
            merged[column.name] = merged[column.name].astype(object)
    return Frame(pd.DataFrame({c.name: merged[c.name] for c in columns}), columns)


_NO_MATCH = object()  # equal only to itself: a missing survey id that joins no operations row


def _key(value: object) -> object:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return None if value is None or value != value else str(value)
