"""Task functions for the executor tests (imported by Ray workers through PYTHONPATH)."""

import json
import os
import time
from pathlib import Path


def count(run_dir: str, steps: int, seed: int, delay: float = 0.0) -> dict:
    """A resumable toy run: one step per ``delay`` s, progress in state.json (atomic)."""
    d = Path(run_dir)
    d.mkdir(parents=True, exist_ok=True)
    state = d / "state.json"
    step, acc = 0, seed
    start = 0
    if state.exists():
        s = json.loads(state.read_text())
        step, acc = s["step"], s["acc"]
        start = step
    while step < steps:
        acc = (acc * 1103515245 + 12345) % 2**31
        step += 1
        tmp = d / "state.json.tmp"
        tmp.write_text(json.dumps({"step": step, "acc": acc}))
        os.replace(tmp, state)
        time.sleep(delay)
    return {"acc": acc, "pid": os.getpid(), "ran": step - start}


def fail(run_dir: str) -> None:
    print("about to fail")
    raise RuntimeError("deliberate failure")
