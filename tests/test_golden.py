"""Golden numbers: a seeded short CPU rollout, reduced to scalars kept in tests/golden/.

If this fails after a change that is meant to change rollouts, regenerate with `python scripts/make_golden.py`
and say why in the commit message."""

import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

from make_golden import GOLDEN, rollout_summary  # noqa: E402


def test_smoke_rollout_matches_golden_numbers():
    expected = json.loads(GOLDEN.read_text())
    got = rollout_summary()
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-3), key
