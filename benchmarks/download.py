"""`fx download` against curl on loopback: 500 files of 200 KB and one 1 GB file, files/s and MB/s.

Run: ``.venv/bin/python benchmarks/download.py [--big-mb 1024] [--small 500] [--repeat 3] [--latency-ms 0 20]``

The files are served from disk by the tests' fault server (``sendfile``, no faults) in a separate process, so the
server never competes with the client for the GIL. Every contender fetches the same URLs into an empty directory;
repeats are interleaved and the best wall time of each counts (the machine may be shared); CPU seconds (user +
sys of the client, summed over its threads or child processes) are shown too, since they do not depend on what
else the machine is doing. ``--latency-ms`` adds a delay before each response, like a network round trip: on
bare loopback a request costs nothing but CPU, on a real network the round trips are what concurrency hides.
Downloads land in ``/dev/shm`` by default (``--out-root``), so the kernel's write-back of 1 GB files to a shared
disk does not decide who wins.

Contenders:
- small files: curl one process per URL (``xargs -n1 curl -O``), curl fetching the whole list sequentially over one
  kept-alive connection, ``curl -Z`` (parallel, for reference), and fx;
- big file: ``curl -o``; ``curl -o && sha256sum`` (fx verifies while it downloads); fx with the sha256 in the
  manifest; fx with ``--no-checksum`` (no hashing at all, as curl);
- fx runs as a user runs it (``fx download MANIFEST --out DIR``, interpreter start-up included) and in-process
  (``download_manifest``), to separate the transfer engine from Python's start-up.

Targets (issue 5): the big file within 10% of curl; small files at least 5x curl's sequential rate.
"""

from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "download"))


def serve(files: dict[str, Path], latency: float, port_q: mp.Queue, stop: mp.Event) -> None:
    from faultserver import FaultServer, Route

    with FaultServer() as srv:
        for path, file in files.items():
            srv.add(path, Route(file=file, delay=latency))
        port_q.put(srv.base)
        stop.wait()


def make_files(work: Path, small: int, big_mb: int) -> tuple[dict[str, Path], dict[str, str]]:
    """The served files and their sha256 (random bytes; the big file repeats one 64 MB random block)."""
    import random

    src = work / "src"
    src.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    files = {}
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
    sums = {}
    for path, file in files.items():
        with open(file, "rb") as fh:
            sums[path] = hashlib.file_digest(fh, "sha256").hexdigest()
    return files, sums


def _cpu(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def run_cmd(cmd: list[str] | str, out: Path) -> tuple[float, float]:
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    cpu0, t0 = _cpu(resource.RUSAGE_CHILDREN), time.perf_counter()
    subprocess.run(cmd, check=True, shell=isinstance(cmd, str), cwd=out, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL)
    return time.perf_counter() - t0, _cpu(resource.RUSAGE_CHILDREN) - cpu0


def run_inproc(manifest: Path, out: Path, jobs: int, checksum: bool = True) -> tuple[float, float]:
    from faceexpr_cli.download import DownloadOptions
    from faceexpr_cli.download.runner import download_manifest

    shutil.rmtree(out, ignore_errors=True)
    opts = DownloadOptions(jobs=jobs, per_host=jobs, checksum=checksum)
    cpu0, t0 = _cpu(resource.RUSAGE_SELF), time.perf_counter()
    result = download_manifest(manifest, out, opts, progress=False)
    wall, cpu = time.perf_counter() - t0, _cpu(resource.RUSAGE_SELF) - cpu0
    assert result.count("ok") == len(result.records), result.failed[:3]
    return wall, cpu


def contenders(work: Path, base: str, small_urls: list[str], big_url: str, sums: dict[str, str], args):
    jobs = args.jobs
    m_small, m_big, m_big_plain = work / "small.csv", work / "big.csv", work / "big.txt"
    m_small.write_text("url,sha256\n" + "".join(f"{u},{sums[u[len(base):]]}\n" for u in small_urls))
    m_big.write_text(f"url,sha256\n{big_url},{sums['/big/big.bin']}\n")
    m_big_plain.write_text(big_url + "\n")
    (work / "small.txt").write_text("\n".join(small_urls) + "\n")
    out = args.out_root / "fx-download-bench-out"
    curl_list = " ".join(f"-o {Path(u).name} {u}" for u in small_urls)
    fx = [sys.executable, "-m", "faceexpr_cli", "-q", "download"]
    par = ["-j", str(jobs), "--per-host", str(jobs)]
    return [
        ("small", "curl, one process per file", lambda: run_cmd(f"xargs -n1 curl -s -O < {work / 'small.txt'}", out)),
        ("small", "curl, one process, sequential", lambda: run_cmd(f"curl -s {curl_list}", out)),
        ("small", "curl -Z (parallel 50)", lambda: run_cmd(f"curl -s -Z {curl_list}", out)),
        ("small", "fx download (CLI)", lambda: run_cmd([*fx, str(m_small), "--out", str(out), *par], out)),
        ("small", "fx download (in-process)", lambda: run_inproc(m_small, out, jobs)),
        ("big", "curl -o", lambda: run_cmd(["curl", "-s", "-o", "big.bin", big_url], out)),
        ("big", "curl -o && sha256sum", lambda: run_cmd(f"curl -s -o big.bin {big_url} && sha256sum big.bin", out)),
        ("big", "fx download, sha256 (CLI)", lambda: run_cmd([*fx, str(m_big), "--out", str(out)], out)),
        ("big", "fx download, sha256 (in-process)", lambda: run_inproc(m_big, out, 1)),
        ("big", "fx --no-checksum (CLI)", lambda: run_cmd([*fx, str(m_big_plain), "--out", str(out), "--no-checksum"], out)),
        ("big", "fx --no-checksum (in-process)", lambda: run_inproc(m_big_plain, out, 1, checksum=False)),
    ]


def bench(files, sums, latency_ms: float, args) -> None:
    port_q, stop = mp.Queue(), mp.Event()
    server = mp.Process(target=serve, args=(files, latency_ms / 1000, port_q, stop), daemon=True)
    server.start()
    base = port_q.get(timeout=60)
    small_urls = [base + p for p in files if p.startswith("/small/")]
    runs = contenders(args.work, base, small_urls, base + "/big/big.bin", sums, args)
    if latency_ms:
        runs = [r for r in runs if r[0] == "small"]  # one request: a round trip more or less changes nothing
    best: dict[str, tuple[float, float]] = {}
    try:
        for _ in range(args.repeat):
            for _case, name, fn in runs:
                wall, cpu = fn()
                if name not in best or wall < best[name][0]:
                    best[name] = (wall, cpu)
    finally:
        stop.set()
        server.join(timeout=5)
        shutil.rmtree(args.out_root / "fx-download-bench-out", ignore_errors=True)
    n = len(small_urls)
    small_mb = sum(files[u[len(base):]].stat().st_size for u in small_urls) / 1e6
    big_mb = files["/big/big.bin"].stat().st_size / 1e6
    print(f"\nloopback, {latency_ms:g} ms per request; {n} files of 200 KB, one file of {big_mb:.0f} MB; "
          f"best of {args.repeat}; {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    print(f"{'case':6} {'contender':34} {'seconds':>8} {'cpu s':>7} {'files/s':>9} {'MB/s':>8}")
    for case, name, _ in runs:
        wall, cpu = best[name]
        count, mb = (n, small_mb) if case == "small" else (1, big_mb)
        print(f"{case:6} {name:34} {wall:8.2f} {cpu:7.2f} {count / wall:9.1f} {mb / wall:8.1f}")
    w = {k: v[0] for k, v in best.items()}
    print(f"small files, fx CLI vs curl per file: {w['curl, one process per file'] / w['fx download (CLI)']:.1f}x; "
          f"vs curl sequential on one connection: {w['curl, one process, sequential'] / w['fx download (CLI)']:.1f}x "
          f"(in-process {w['curl, one process, sequential'] / w['fx download (in-process)']:.1f}x); target >= 5x")
    if not latency_ms:
        print(f"big file, time / curl's: fx --no-checksum CLI {w['fx --no-checksum (CLI)'] / w['curl -o']:.2f}, "
              f"in-process {w['fx --no-checksum (in-process)'] / w['curl -o']:.2f}; fx with sha256 vs curl && "
              f"sha256sum: CLI {w['fx download, sha256 (CLI)'] / w['curl -o && sha256sum']:.2f}, in-process "
              f"{w['fx download, sha256 (in-process)'] / w['curl -o && sha256sum']:.2f}; target <= 1.10")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--small", type=int, default=500)
    ap.add_argument("--big-mb", type=int, default=1024)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--jobs", type=int, default=16)
    ap.add_argument("--latency-ms", type=float, nargs="+", default=[0.0, 20.0])
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "fx-download-bench",
                    help="where the served files are made")
    shm = Path("/dev/shm")
    ap.add_argument("--out-root", type=Path, default=shm if shm.is_dir() else Path(tempfile.gettempdir()),
                    help="where downloads land (memory-backed by default, so disk write-back stalls on a shared "
                         "machine do not decide the result)")
    args = ap.parse_args()
    if not shutil.which("curl"):
        sys.exit("curl is the baseline: install it (apt-get install curl)")
    files, sums = make_files(args.work, args.small, args.big_mb)
    for latency in args.latency_ms:
        bench(files, sums, latency, args)


if __name__ == "__main__":
    main()
