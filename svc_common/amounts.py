"""Amounts of money read from events: whole fen (0.01 CNY), bounded so that no valid event makes a stored sum
overflow the 64-bit integers the databases and the encoders hold.

svc_collect accepts any finite double and any int64 as a property; summed into a day bucket, a turnover or a goal's
value, one absurd amount (1e300 yuan) or two of 2**63 - 1 fen used to fail the consumer's batch at every retry,
stopping the log consumer on it (before 0.2.9).
"""

from __future__ import annotations

import math
from decimal import ROUND_HALF_UP, Decimal

MAX_AMOUNT_FEN = 10**12
"""One event's amount counts at most this many fen, either sign: 10 billion yuan, beyond any trade of a retail
broker's app. A sum of them reaches 2**63 only after 9,223,372 such amounts (one person's trades of one day, or of a
400-day window)."""
INT64_MAX = (1 << 63) - 1
_ONE = Decimal(1)


def bounded_fen(fen: int) -> int:
    """``fen`` within ±:data:`MAX_AMOUNT_FEN`."""
    return max(-MAX_AMOUNT_FEN, min(MAX_AMOUNT_FEN, fen))


def bounded_sum(total: int) -> int:
    """A sum of amounts within the int64 range (saturated, never wrapped or failed)."""
    return max(-INT64_MAX, min(INT64_MAX, total))


def number_as_fen(number: float, per_unit: int = 1) -> int | None:
    """A double or int amount in units of ``per_unit`` fen (1: fen, 100: yuan) as whole, bounded fen, rounded half away
    from zero (四舍五入) on the number's decimal text: 0.285 yuan is 29 fen (``round(0.285 * 100)`` gives 28), 12.5
    fen is 13 (``round`` gives 12). None for nan and infinities (svc_collect refuses both)."""
    if isinstance(number, int):
        return bounded_fen(number * per_unit)
    if not math.isfinite(number):
        return None
    if abs(number) * per_unit >= MAX_AMOUNT_FEN:
        return MAX_AMOUNT_FEN if number > 0 else -MAX_AMOUNT_FEN
    return int((Decimal(repr(number)) * per_unit).quantize(_ONE, rounding=ROUND_HALF_UP))
