"""``consumer_switch_interval_micros``: the GIL switch interval shortened (never lengthened) once the log consumer
commits, so that its commit thread does not wait up to 5 ms for the GIL after each statement."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from profile_helpers import event, profile_app, profile_settings

from svc_profile.pipeline import shorten_switch_interval


@pytest.fixture
def interval() -> Iterator[None]:
    before = sys.getswitchinterval()
    sys.setswitchinterval(0.005)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


@pytest.mark.parametrize(("micros", "expected"), [(1000, 0.001), (250, 0.00025), (0, 0.005)])
def test_the_consumer_shortens_the_switch_interval_as_it_first_commits(
    tmp_path: Path, interval: None, micros: int, expected: float
) -> None:
    with profile_app(profile_settings(tmp_path, consumer_switch_interval_micros=micros)) as app:
        assert sys.getswitchinterval() == pytest.approx(0.005)  # not before the consumer commits
        app.consumer.handle([event("login", user_id="C1")], "c1")
        assert sys.getswitchinterval() == pytest.approx(expected)


def test_a_shorter_interval_the_process_has_is_kept(interval: None) -> None:
    sys.setswitchinterval(0.0002)
    shorten_switch_interval(1000)
    assert sys.getswitchinterval() == pytest.approx(0.0002)
    shorten_switch_interval(100)
    assert sys.getswitchinterval() == pytest.approx(0.0001)
