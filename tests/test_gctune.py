"""The serving process's garbage-collector settings (svc_common.gctune)."""

from __future__ import annotations

import gc

from svc_common.config import ServerSettings, load_settings
from svc_common.gctune import tune_for_serving


def test_serving_freezes_start_up_objects_and_collects_the_young_generation_less_often() -> None:
    before = gc.get_threshold()
    try:
        tune_for_serving(load_settings(ServerSettings, gc_young_threshold=5_000).gc_young_threshold)
        assert gc.get_threshold() == (5_000, 10, 10)
        assert gc.get_freeze_count() > 1_000  # the modules and classes loaded so far
        assert gc.isenabled()
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)


def test_the_default_threshold_is_raised_from_pythons_700() -> None:
    assert load_settings(ServerSettings).gc_young_threshold == 10_000
