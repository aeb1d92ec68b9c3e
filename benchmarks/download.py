"""`fx download` against curl on loopback: 500 files of 200 KB and one 1 GB file, files/s and MB/s.

Run: ``.venv/bin/python benchmarks/download.py [--big-mb 1024] [--small 500] [--repeat 3] [--work DIR]``

The files are served from disk by the tests' fault server (with ``sendfile``, no faults) in a separate process,
so the server never competes with the client for the GIL. Each contender fetches the same URLs into an empty
directory; the best of ``--repeat`` runs counts (the machine may be shared). Baselines:

- big file: ``curl -o`` (and ``curl`` + ``sha256sum``, since fx verifies the sha256 while it downloads);
- small files, sequentially: one curl process per URL (a shell loop), and one curl process fetching the whole
  list over one kept-alive connection (the stronger baseline the target is measured against); ``curl -Z``
  (parallel) is shown for reference.

fx runs as the user would run it (``fx download MANIFEST --out DIR``, process start included) and in-process
(``download_manifest``), both with the manifest's sha256 checked. Targets (issue 5): big file within 10% of curl,
small files at least 5x curl's sequential rate.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "download"))


def serve(files: dict[str, Path], port_q: mp.Queue, stop: mp.Event) -> None:
    from faultserver import FaultServer, Route

    with FaultServer() as srv:
        for path, file in files.items():
            srv.add(path, Route(file=file))
        port_q.put(srv.base)
        stop.wait()


def make_files(work: Path, small: int, big_mb: int) -> tuple[dict[str, Path], dict[str, str]]:
    """The served files and their sha256 (random bytes; the big file repeats one 64 MB random block)."""
    src = work / "src"
    src.mkdir(parents=True, exist_ok=True)
    files, sums = {}, {}
    rng = __import__("random").Random(0)
    for i in range(small):
        path = src / f"s{i:04d}.bin"
        if not path.exists():
            path.write_bytes(rng.randbytes(200 * 1000))
        files[f"/small/{path.name}"] = path
    big = src / "big.bin"
    if not big.exists() or big.stat().st_size != big_mb << 20:
        block = rng.randbytes(min(64, big_mb) << 20)
        with open(big, "wb") as fh:
            for _ in range(max(1, big_mb // 64)):
                fh.write(block)
    files["/big/big.bin"] = big
    for path, file in files.items():
        sums[path] = hashlib.file_digest(open(file, "rb"), "sha256").hexdigest()  # noqa: SIM115
    return files, sums


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        times.append(fn())
    return min(times)


def timed(cmd: list[str] | str, out: Path, shell: bool = False) -> float:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, shell=shell, cwd=out, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0


def fx_in_process(manifest: Path, out: Path, jobs: int) -> float:
    from faceexpr_cli.download import DownloadOptions
    from faceexpr_cli.download.runner import download_manifest

    shutil.rmtree(out, ignore_errors=True)
    t0 = time.perf_counter()
    result = download_manifest(manifest, out, DownloadOptions(jobs=jobs, per_host=jobs), progress=False)
    elapsed = time.perf_counter() - t0
    assert result.count("ok") == len(result.records), result.failed[:3]
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", type=int, default=500)
    ap.add_argument("--big-mb", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--work", type=Path, default=None, help="where the served files and downloads go")
    args = ap.parse_args()
    if not shutil.which("curl"):
        sys.exit("curl is the baseline: install it (apt-get install curl)")
    work = args.work or Path(tempfile.gettempdir()) / "fx-download-bench"
    files, sums = make_files(work, args.small, args.big_mb)
    port_q, stop = mp.Queue(), mp.Event()
    server = mp.Process(target=serve, args=(files, port_q, stop), daemon=True)
    server.start()
    base = port_q.get(timeout=60)
    small_urls = [base + p for p in files if p.startswith("/small/")]
    big_url = base + "/big/big.bin"
    fx = [sys.executable, "-m", "faceexpr_cli", "-q", "download"]
    m_small, m_big = work / "small.csv", work / "big.csv"
    m_small.write_text("url,sha256\n" + "".join(f"{u},{sums[u[len(base):]]}\n" for u in small_urls))
    m_big.write_text(f"url,sha256\n{big_url},{sums['/big/big.bin']}\n")
    (work / "small.txt").write_text("\n".join(small_urls) + "\n")
    out, rep = work / "out", args.repeat
    curl_list = " ".join(f"-o {Path(u).name} {u}" for u in small_urls)
    try:
        n, small_mb, big_bytes = len(small_urls), sum(files[u[len(base):]].stat().st_size for u in small_urls) / 1e6, \
            files["/big/big.bin"].stat().st_size
        rows = [
            ("small", "curl, one process per file", best(lambda: timed(f"xargs -n1 curl -s -O < {work / 'small.txt'}", out, True), rep)),
            ("small", "curl, one process, sequential", best(lambda: timed(f"curl -s {curl_list}", out, True), rep)),
            ("small", "curl -Z (parallel 50)", best(lambda: timed(f"curl -s -Z {curl_list}", out, True), rep)),
            ("small", "fx download (CLI)", best(lambda: timed([*fx, str(m_small), "--out", str(out), "-j", str(args.jobs), "--per-host", str(args.jobs)], out), rep)),
            ("small", "fx download (in-process)", best(lambda: fx_in_process(m_small, out, args.jobs), rep)),
            ("big", "curl -o", best(lambda: timed(["curl", "-s", "-o", "big.bin", big_url], out), rep)),
            ("big", "curl -o + sha256sum", best(lambda: timed(f"curl -s -o big.bin {big_url} && sha256sum big.bin", out, True), rep)),
            ("big", "fx download (CLI, sha256 checked)", best(lambda: timed([*fx, str(m_big), "--out", str(out)], out), rep)),
            ("big", "fx download (in-process)", best(lambda: fx_in_process(m_big, out, 1), rep)),
        ]
    finally:
        stop.set()
        server.join(timeout=5)
        shutil.rmtree(out, ignore_errors=True)
    print(f"loopback, {os.cpu_count()} CPUs; {n} files of 200 KB, one file of {big_bytes / 1e6:.0f} MB; best of {rep}")
    print(f"{'case':6} {'contender':36} {'seconds':>8} {'files/s':>9} {'MB/s':>8}")
    ref = {}
    for case, name, sec in rows:
        count, mb = (n, small_mb) if case == "small" else (1, big_bytes / 1e6)
        ref[(case, name)] = sec
        print(f"{case:6} {name:36} {sec:8.2f} {count / sec:9.1f} {mb / sec:8.1f}")
    seq = ref[("small", "curl, one process, sequential")]
    fx_small = ref[("small", "fx download (CLI)")]
    fx_big, curl_big = ref[("big", "fx download (CLI, sha256 checked)")], ref[("big", "curl -o")]
    print(f"small files: fx CLI is {seq / fx_small:.1f}x curl's sequential rate (target >= 5x); "
          f"{ref[('small', 'curl, one process per file')] / fx_small:.1f}x a curl-per-file loop")
    print(f"big file: fx CLI takes {fx_big / curl_big:.2f}x curl's time (target <= 1.10); "
          f"in-process {ref[('big', 'fx download (in-process)')] / curl_big:.2f}x")


if __name__ == "__main__":
    main()
