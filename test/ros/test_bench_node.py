"""bench/bench_node.py against the real node: its parser of the node's per-frame debug line must keep
up with that line, or every node case silently measures nothing (it once did: "(batch of N)" was
added to the line and the bench reported no frames)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_node_case_of_the_bench_measures_every_frame_it_sent(tmp_path):
    out = tmp_path / "bench.json"
    domain = str(150 + os.getpid() % 50)
    done = subprocess.run([sys.executable, str(ROOT / "bench" / "bench_node.py"), "--only", "node",
                           "--node-rates", "5", "--node-transports", "shm-profile", "--frames", "6",
                           "--warmup", "1", "--domain", domain, "--json", str(out)],
                          cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    (case,) = json.loads(out.read_text())["node"]
    assert case["sent"] == 6 and case["received"] >= 5, case.get("node_log_tail", "")
    assert case["processed"] == case["received"]  # each published frame matched its node log line
    assert 0 < case["engine"][0] < case["e2e"][0]
