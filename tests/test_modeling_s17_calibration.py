"""Session 17 (walk walkmod, minor 3): isotonic calibration mapped a block of calibration rows without a positive to
a probability of exactly 0 (and a block of only positives to exactly 1); those scores went into svc_profile's tags.
Calibrated probabilities now stay half an observation away from 0 and 1."""

from __future__ import annotations

import numpy as np
import pytest

from svc_modeling.methods.propensity import Calibrator


def test_isotonic_calibration_never_answers_0_or_1() -> None:
    raw = np.array([0.01] * 50 + [0.5] * 50 + [0.99] * 50)
    y = np.array([0] * 50 + [1] * 25 + [0] * 25 + [1] * 50)
    calibrated = Calibrator.fit("isotonic", raw, y)(np.array([0.0, 0.01, 0.5, 0.99, 1.0]))
    bound = 0.5 / len(y)
    assert calibrated[0] == calibrated[1] == pytest.approx(bound)
    assert calibrated[2] == pytest.approx(0.5)
    assert calibrated[3] == calibrated[4] == pytest.approx(1 - bound)
