"""``collect_rarely``: a long-running process freezes what it loaded and collects cycles after 50,000 young
objects instead of 700, and still collects them. Run in a child process: the test process keeps its own
collector settings."""

from __future__ import annotations

import json
import subprocess
import sys

from assistant.processes import YOUNG_OBJECTS_PER_COLLECTION

CHILD = """
import gc, json, weakref
from assistant.processes import collect_rarely, YOUNG_OBJECTS_PER_COLLECTION

class Node:
    pass

def cycle():
    node = Node()
    node.me = node
    return weakref.ref(node)

before = gc.get_threshold()
collect_rarely()
early = cycle()
kept = [[] for _ in range(YOUNG_OBJECTS_PER_COLLECTION // 2)]
alive_halfway = early() is not None
kept += [[] for _ in range(YOUNG_OBJECTS_PER_COLLECTION)]
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count(),
                  "alive_halfway": alive_halfway, "alive_after": early() is not None}))
"""


def test_the_collector_runs_rarely_and_still_collects_cycles() -> None:
    out = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, check=True).stdout
    seen = json.loads(out)
    assert seen["before"][0] < YOUNG_OBJECTS_PER_COLLECTION, "the child starts with Python's default (700, 3.13: 2,000)"
    assert seen["after"] == [YOUNG_OBJECTS_PER_COLLECTION, *seen["before"][1:]]
    assert seen["frozen"] > 1_000, "what was loaded is frozen out of full collections"
    assert seen["alive_halfway"], "no collection before the young objects reach the threshold"
    assert not seen["alive_after"], "a cycle made after tuning is still collected"
