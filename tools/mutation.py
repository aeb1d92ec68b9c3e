"""Mutation testing of one package of faceexpr_cli against that package's tests (mutmut 3).

    make mutation MODULE=media                 # every file of faceexpr_cli/media
    make mutation MODULE=media FILES=timeline  # only faceexpr_cli/media/timeline.py
    .venv/bin/python tools/mutation.py extract --sample 150   # a random sample of the mutants (seed 0)

The run happens in a scratch copy of the tracked tree (``--workdir``, default /tmp/fx-mutation/MODULE), so the
working tree is never touched. The copy's ``mutants/`` folder goes first on PYTHONPATH, so tests that start ``fx``
in a subprocess run the mutant too. The summary (killed, survived, timed out, kill rate) goes to stdout and to
``mutation-MODULE.json`` in the current folder; ``mutmut results`` / ``mutmut show NAME`` inside the work folder
list the survivors. Slow: not part of CI. ``--sample N`` tests N mutants drawn at random (``--seed``) from all the
package's mutants, so a package too big to test whole still gets an unbiased kill-rate estimate (mutmut's own
order runs the mutants with the fastest tests first, so a run cut short is biased); ``--reuse`` keeps the work
folder of an earlier run (its mutants, coverage stats and results) instead of starting afresh; ``--exclude
RUN/sample.json`` leaves out the mutants an earlier sample tested, so tests written against its survivors do not
inflate the next estimate.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# package -> the tests that exercise it (beyond tests/<package>/)
TESTS = {
    "media": ["tests/media", "tests/core/test_media.py", "tests/core/test_timeline.py", "tests/clip/test_cutting.py",
              "tests/clip/test_footage.py", "tests/crop/test_footage.py"],
    "crop": ["tests/crop"],
    "clip": ["tests/clip"],
    "dataset": ["tests/dataset", "tests/train/test_data.py"],
    "onnx": ["tests/onnx"],
    "extract": ["tests/extract"],
    "train": ["tests/train"],
    "download": ["tests/download"],
    "face": ["tests/face"],
    "animate": ["tests/animate"],
    "transcripts": ["tests/transcripts", "tests/clip/test_planning.py"],
}


def prepare(workdir: Path, module: str, files: list[str], debug: bool = False) -> None:
    """The committed tree (HEAD, not a half-edited working tree) and a [mutmut] section for MODULE."""
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    archive = subprocess.run(["git", "archive", "HEAD"], cwd=ROOT, capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(workdir)], input=archive, check=True)
    targets = [f"faceexpr_cli/{module}/{f}.py" for f in files] or [f"faceexpr_cli/{module}/*"]
    tests = [t for t in TESTS.get(module, [f"tests/{module}"]) if (workdir / t).exists()]
    lines = ["[mutmut]", "source_paths = faceexpr_cli", "only_mutate =", *[f"    {t}" for t in targets],
             "pytest_add_cli_args_test_selection =", *[f"    {t}" for t in tests],
             "pytest_add_cli_args =", "    -p", "    no:xdist", "    -p", "    no:cacheprovider",
             # Tests that time a real SIGINT against a child's progress (marker sigint_timing): under mutmut's
             # load the child often ends first, so the clean run fails and no mutant is tested. They run in CI.
             "    -m", "    not sigint_timing",
             "also_copy =", "    models", "    recipes", "    README.md", f"debug = {str(debug).lower()}"]
    (workdir / "setup.cfg").write_text("\n".join(lines) + "\n")


def all_mutants(workdir: Path, env: dict) -> list[str]:
    """Every mutant's name: a run filtered on a name that matches nothing generates the mutants and the coverage
    stats, then stops; the names are the keys of the ``.meta`` file beside each mutated source file."""
    subprocess.run([sys.executable, "-m", "mutmut", "run", "__fx_no_such_mutant__"], cwd=workdir, env=env,
                   capture_output=True)
    names: list[str] = []
    for meta in sorted((workdir / "mutants").rglob("*.py.meta")):
        names += sorted(json.loads(meta.read_text())["exit_code_by_key"])
    return names


def summarise(workdir: Path, only: list[str] | None = None) -> dict:
    """Counts per status (of ``only``'s mutants when given); the kill rate counts timeouts as killed."""
    keep = set(only) if only else None
    res = subprocess.run([sys.executable, "-m", "mutmut", "results", "--all", "true"], cwd=workdir,
                         capture_output=True, text=True)
    counts: Counter = Counter()
    survivors = []
    statuses: list[tuple[str, str]] = []
    for line in res.stdout.splitlines():
        if ":" not in line:
            continue
        name, status = (s.strip() for s in line.rsplit(":", 1))
        if keep is not None and name not in keep:
            continue
        counts[status] += 1
        statuses.append((name, status))
        if status == "survived":
            survivors.append(name)
    killed = counts.get("killed", 0) + counts.get("timeout", 0)
    tested = killed + counts.get("survived", 0)
    # A timeout is only a kill if the mutant really hangs: on a loaded machine a slow but passing run times out
    # too (3 of 5 onnx timeouts, re-run alone, passed). The rate without them is the one to trust; re-run the
    # listed ones alone (MUTANT_UNDER_TEST=NAME pytest -x, from the work folder's mutants/) to settle them.
    strict = counts.get("killed", 0) + counts.get("survived", 0)
    unsettled = [n for n, st in statuses if st in ("timeout", "segfault")]
    return {"counts": dict(counts), "killed_or_timeout": killed, "tested": tested,
            "kill_rate": round(killed / tested, 3) if tested else None,
            "kill_rate_without_timeouts": round(counts.get("killed", 0) / strict, 3) if strict else None,
            "survivors": survivors, "unsettled": unsettled}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("module", help="a package of faceexpr_cli: media, crop, clip, dataset, onnx, extract, train, ...")
    ap.add_argument("--files", default="", help="comma-separated file stems inside the package (default: all)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--max-children", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--debug", action="store_true", help="mutmut's debug output (the tests each mutant ran)")
    ap.add_argument("--sample", type=int, default=0, help="test only this many mutants, drawn at random")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--reuse", action="store_true", help="keep the work folder of an earlier run")
    ap.add_argument("--exclude", type=Path, action="append", default=[],
                    help="an earlier run's sample.json: draw only mutants it did not test (repeatable)")
    args = ap.parse_args()
    if not (ROOT / "faceexpr_cli" / args.module).is_dir():
        print(f"error: no package faceexpr_cli/{args.module}", file=sys.stderr)
        return 2
    workdir = args.workdir or Path("/tmp/fx-mutation") / args.module
    files = [f for f in args.files.split(",") if f]
    if not (args.reuse and (workdir / "setup.cfg").is_file()):
        prepare(workdir, args.module, files, args.debug)
    # mutants/ must exist before Python starts: a PYTHONPATH entry missing at start-up is cached as absent
    (workdir / "mutants").mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": f"{workdir / 'mutants'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    chosen: list[str] = []
    population = None
    if args.sample:
        names = all_mutants(workdir, env)
        tested = {n for f in args.exclude for n in json.loads(f.read_text())}
        names = [n for n in names if n not in tested]  # a fresh sample: tests written for those cannot bias it
        population = len(names)
        chosen = sorted(random.Random(args.seed).sample(names, min(args.sample, len(names))))
        (workdir / "sample.json").write_text(json.dumps(chosen) + "\n")  # to summarise a run cut short
    code = subprocess.run([sys.executable, "-m", "mutmut", "run", "--max-children", str(args.max_children),
                           *chosen], cwd=workdir, env=env).returncode
    summary = {"module": args.module, "files": files or "all", "mutmut_exit": code,
               **summarise(workdir, chosen or None)}
    if population is not None:
        summary |= {"sample": len(chosen), "population": population, "seed": args.seed}
    Path(f"mutation-{args.module}.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k not in ("survivors", "unsettled")}, indent=2))
    if summary["unsettled"]:
        print(f"{len(summary['unsettled'])} timed out or were killed: re-run them alone before trusting the rate")
    print(f"{len(summary['survivors'])} survivors: see {workdir} (mutmut results / mutmut show NAME)")
    return 0 if code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
