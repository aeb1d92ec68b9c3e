"""Run under torchrun by test_ddp.py: ``fx train joint`` through the CLI, then each rank writes what it trained.

Every rank writes ``<out>/rank<R>.json``: the digest of its models' weights when the task was built and after the
run, and the (clip, start) windows it drew per step, so the test can compare ranks with each other and with a
single process. Not a test module (no ``test_`` prefix): pytest does not collect it.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path


def digest(models: dict) -> str:
    """sha1 over every tensor of every model, by role and key (the same bytes a checkpoint file holds)."""
    h = hashlib.sha1()
    for role in sorted(models):
        state = models[role].state_dict()
        for key in sorted(state):
            h.update(f"{role}/{key}".encode())
            h.update(state[key].detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def main() -> int:
    from faceexpr_cli.cli.app import main as fx
    from faceexpr_cli.train import runner

    out, argv = Path(sys.argv[1]), sys.argv[2:]
    built, windows = [], []
    for kind, cls in list(runner.TASKS.items()):
        class Spy(cls):  # noqa: D101 - records the task the runner builds, with its initial weights
            def __init__(self, *args, **kwargs):
                super().__init__(*args, **kwargs)
                built.append((self, digest(self.models)))

        runner.TASKS[kind] = Spy
    make = runner.BatchStream._make

    def spy_make(self, step):
        batch = make(self, step)
        windows.append([step, [[c.key, s] for c, s in zip(batch.clips, batch.starts, strict=True)]])
        return batch

    runner.BatchStream._make = spy_make
    code = fx(argv)
    task, init = built[0]
    rank = int(os.environ.get("RANK", "0"))
    record = {"code": code, "init": init, "final": digest(task.models), "windows": sorted(windows),
              "world": int(os.environ.get("WORLD_SIZE", "1"))}
    (out / f"rank{rank}.json").write_text(json.dumps(record))
    return code


if __name__ == "__main__":
    sys.exit(main())
