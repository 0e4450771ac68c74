#!/usr/bin/env python3
"""Load test of the REST service: ``voxguard serve`` on 127.0.0.1, N scans of short clips, C at a time.

Starts the real server (``voxguard.server.local.LocalServer``: the CLI and uvicorn in a child process,
loopback only, a throwaway database), uploads the bundled example clips round-robin from C concurrent
clients (httpx, asyncio), and reports errors, latency percentiles, throughput and the server's CPU
time. A ``503 busy`` (all scan slots taken) is retried after 50 ms and counted separately (its
latency includes the retries); anything else that is not 200 is an error. Bounded: it stops after ``--scans`` requests
or ``--max-wall`` seconds, whichever comes first.

    .venv/bin/python scripts/loadtest.py                          # 500 scans, 8 clients, 8 slots
    .venv/bin/python scripts/loadtest.py --max-concurrent 2       # fewer slots than clients: 503s retried
    .venv/bin/python scripts/loadtest.py --workers 2 --max-concurrent 4 --json out.json

Exit status: 0 when every scan succeeded (after busy retries), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
CLIPS = sorted((ROOT / "examples").glob("*.flac"))


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process and its live children (uvicorn workers); Linux only."""
    tick = os.sysconf("SC_CLK_TCK")

    def stat(p: int) -> list[str]:
        text = Path(f"/proc/{p}/stat").read_text()
        return text[text.rindex(")") + 2 :].split()  # fields after the command name

    total = 0.0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = stat(int(entry.name))
        except (OSError, ValueError):
            continue
        if int(entry.name) == pid or int(fields[1]) == pid:  # fields[1] is the parent pid
            total += (int(fields[11]) + int(fields[12])) / tick  # utime, stime
    return total


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def _run_clients(
    url: str, clips: list[tuple[str, bytes]], n_scans: int, concurrency: int, max_wall_s: float
) -> dict[str, Any]:
    import httpx

    latencies: list[float] = []
    statuses: dict[str, int] = {}
    verdicts: dict[str, int] = {}
    errors: list[str] = []
    busy_retries = 0
    issued = 0
    deadline = time.monotonic() + max_wall_s
    done = 0

    async def client(session: httpx.AsyncClient) -> None:
        nonlocal issued, busy_retries, done
        while issued < n_scans and time.monotonic() < deadline:
            k = issued
            issued += 1
            name, data = clips[k % len(clips)]
            start = time.perf_counter()
            while True:
                try:
                    r = await session.post(url + "/v1/scan", files={"file": (name, data, "audio/flac")})
                except httpx.HTTPError as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    statuses["transport"] = statuses.get("transport", 0) + 1
                    break
                if r.status_code == 503 and r.json().get("error") == "busy" and time.monotonic() < deadline:
                    busy_retries += 1
                    # 50 ms, not Retry-After: a load generator wants the slots kept full, a polite client waits.
                    await asyncio.sleep(0.05)
                    continue
                statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
                if r.status_code == 200:
                    latencies.append(time.perf_counter() - start)  # including any busy retries
                    v = r.json()["verdict"]
                    verdicts[v] = verdicts.get(v, 0) + 1
                else:
                    errors.append(f"{r.status_code}: {r.text[:200]}")
                break
            done += 1
            if done % 50 == 0:
                print(f"  {done}/{n_scans} scans", file=sys.stderr, flush=True)

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=120, limits=limits) as session:
        start = time.perf_counter()
        await asyncio.gather(*(client(session) for _ in range(concurrency)))
        wall = time.perf_counter() - start
    return {
        "wall_s": wall,
        "latencies": latencies,
        "statuses": statuses,
        "verdicts": verdicts,
        "errors": errors,
        "busy_retries": busy_retries,
        "requests": done,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scans", type=int, default=500, help="scans to send (default 500)")
    parser.add_argument("--concurrency", type=int, default=8, help="concurrent clients (default 8)")
    parser.add_argument(
        "--max-concurrent", type=int, default=8, help="VOXGUARD_MAX_CONCURRENT of the server (default 8)"
    )
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1)")
    parser.add_argument("--model", default=None, help="model to serve (default: the default model)")
    parser.add_argument("--max-wall", type=float, default=900.0, help="stop sending after this many seconds")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args()
    if not CLIPS:
        print("no example clips in examples/", file=sys.stderr)
        return 1

    from voxguard.audio import probe
    from voxguard.server.local import LocalServer

    clips = [(p.name, p.read_bytes()) for p in CLIPS]
    clip_s = [probe(p).duration_s or 0.0 for p in CLIPS]
    audio_s = sum(clip_s[k % len(clips)] for k in range(args.scans))
    env = {"VOXGUARD_MAX_CONCURRENT": str(args.max_concurrent), "VOXGUARD_REQUEST_TIMEOUT_S": "120"}
    with tempfile.TemporaryDirectory(prefix="voxguard-load-") as tmp:
        slots = f"{args.workers} worker(s), {args.max_concurrent} scan slots each"
        print(f"starting voxguard serve ({slots}) ...", file=sys.stderr)
        with LocalServer(data_dir=tmp, env=env, model=args.model, workers=args.workers) as server:
            assert server.pid is not None
            cpu0 = _cpu_seconds(server.pid)
            print(f"{args.scans} scans, {args.concurrency} concurrent clients -> {server.url}", file=sys.stderr)
            res = asyncio.run(_run_clients(server.url, clips, args.scans, args.concurrency, args.max_wall))
            cpu = _cpu_seconds(server.pid) - cpu0
        from voxguard.server.storage import Storage, scans

        db = Storage(f"sqlite:///{Path(tmp) / 'voxguard.db'}")
        stored = db.count(scans)  # every 200 must have been stored
        db.close()

    lat = res["latencies"]
    ok = len(lat)
    errors = len(res["errors"])
    figures = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}",
        "scans": res["requests"],
        "ok": ok,
        "errors": errors,
        "busy_retries": res["busy_retries"],
        "statuses": res["statuses"],
        "verdicts": res["verdicts"],
        "stored_rows": stored,
        "clients": args.concurrency,
        "max_concurrent": args.max_concurrent,
        "workers": args.workers,
        "wall_s": round(res["wall_s"], 2),
        "throughput_scans_per_s": round(ok / res["wall_s"], 2) if res["wall_s"] else None,
        "audio_s_per_wall_s": round(audio_s * ok / max(args.scans, 1) / res["wall_s"], 1) if res["wall_s"] else None,
        "latency_p50_ms": round(1000 * _percentile(lat, 0.50), 1),
        "latency_p95_ms": round(1000 * _percentile(lat, 0.95), 1),
        "latency_p99_ms": round(1000 * _percentile(lat, 0.99), 1),
        "latency_max_ms": round(1000 * max(lat), 1) if lat else None,
        "latency_mean_ms": round(1000 * statistics.fmean(lat), 1) if lat else None,
        "server_cpu_s": round(cpu, 1),
        "server_cpu_ms_per_scan": round(1000 * cpu / ok, 1) if ok else None,
        "clip_s": [round(s, 2) for s in clip_s],
    }
    print(json.dumps(figures, indent=2))
    for line in res["errors"][:5]:
        print(f"error: {line}", file=sys.stderr)
    if args.json is not None:
        args.json.write_text(json.dumps(figures, indent=2) + "\n")
    return 0 if errors == 0 and ok == args.scans and stored == ok else 1


if __name__ == "__main__":
    sys.exit(main())
