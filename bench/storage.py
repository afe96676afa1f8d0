"""Storage benchmark: a local S3 server (rclone serve s3 on 127.0.0.1) vs a file:// folder.

Writes ``--mb`` MB of episode-sized files (1–50 MB objects, ``put_file``) and ``--small``
chunk-sized objects (``--small-kb`` KB each, ``put_bytes``, like the chunk cache), then reads
everything back with checksum verification; prints MB/s and objects/s for each store and the
ratio. ``--render`` also times ``castline render scripts_in/demo.yaml --out <uri> --qa off`` to a
fresh prefix of each store (engines, Prefect start-up and storage together).

    .venv/bin/python bench/storage.py [--mb 200] [--small 500] [--small-kb 100] [--render]

Both stores are on this machine's disk, so the S3 figures measure the protocol (HTTP, SigV4,
checksums, rclone) and not a network.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))

from castline.storage import S3Settings, Store, open_store  # noqa: E402
from s3_servers import start_rclone, stop  # noqa: E402

MB = 1024 * 1024
LARGE_SIZES_MB = (50, 30, 20, 20, 15, 12, 10, 10, 8, 8, 5, 5, 3, 2, 1, 1)  # 200 MB in 16 objects


def large_sizes(total_mb: int) -> list[int]:
    scale = total_mb / sum(LARGE_SIZES_MB)
    return [max(1, round(size * scale)) for size in LARGE_SIZES_MB]


def make_files(folder: Path, sizes_mb: list[int]) -> list[Path]:
    rng = random.Random(0)
    paths = []
    for index, size in enumerate(sizes_mb):
        path = folder / f"object-{index:02d}.bin"
        path.write_bytes(rng.randbytes(size * MB))
        paths.append(path)
    return paths


def timed(action) -> float:
    started = time.perf_counter()
    action()
    return time.perf_counter() - started


def run_store(store: Store, files: list[Path], small: list[bytes]) -> dict[str, float]:
    large_bytes = sum(path.stat().st_size for path in files)
    small_bytes = sum(len(data) for data in small)
    infos = {}

    def write_large() -> None:
        for path in files:
            infos[f"episodes/{path.name}"] = store.put_file(path, f"episodes/{path.name}")

    def write_small() -> None:
        for index, data in enumerate(small):
            infos[f"_cache/chunks/{index:04d}.flac"] = store.put_bytes(data, f"_cache/chunks/{index:04d}.flac")

    def read_large() -> None:
        for path in files:
            store.verify(f"episodes/{path.name}", infos[f"episodes/{path.name}"].sha256)

    def read_small() -> None:
        for index in range(len(small)):
            store.get_bytes(f"_cache/chunks/{index:04d}.flac")

    results = {"write_large_s": timed(write_large), "write_small_s": timed(write_small),
               "read_large_s": timed(read_large), "read_small_s": timed(read_small)}
    results.update(large_mb=large_bytes / MB, small_mb=small_bytes / MB, large_n=len(files), small_n=len(small))
    return results


def report(name: str, r: dict[str, float]) -> None:
    def rates(kind: str, step: str) -> str:
        seconds = r[f"{step}_{kind}_s"]
        return f"{r[f'{kind}_mb'] / seconds:7.1f} MB/s {r[f'{kind}_n'] / seconds:7.1f} obj/s"

    print(f"{name:>8}  write {r['large_n']:.0f} large ({r['large_mb']:.0f} MB): {rates('large', 'write')} | "
          f"write {r['small_n']:.0f} small: {rates('small', 'write')}")
    print(f"{'':>8}  read+verify large:        {rates('large', 'read')} | read+verify small: {rates('small', 'read')}")


def render(uri: str, env: dict[str, str]) -> tuple[float, int, str]:
    command = [str(REPO / ".venv" / "bin" / "castline"), "render", "scripts_in/demo.yaml", "--out", uri, "--qa", "off"]
    started = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - started
    # The manifest URI on success (stdout), the one-line error otherwise (stderr).
    lines = [line.strip() for line in (done.stdout if done.returncode == 0 else done.stderr).splitlines()
             if line.strip()]
    manifest = [line for line in lines if "manifest" in line]
    return wall, done.returncode, (manifest or lines or [""])[-1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=200, help="total MB of large objects (default 200)")
    parser.add_argument("--small", type=int, default=500, help="number of small objects (default 500)")
    parser.add_argument("--small-kb", type=int, default=100, help="size of each small object in KB (default 100)")
    parser.add_argument("--threshold-mb", type=int, default=None, help="multipart threshold (default: castline's)")
    parser.add_argument("--render", action="store_true", help="also time castline render to each store")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="castline-bench-storage-"))
    server = start_rclone(work / "s3-root")
    try:
        env = {**os.environ, **server.env(), "AWS_EC2_METADATA_DISABLED": "true"}
        os.environ.update(env)
        bucket = server.make_bucket("bench")
        settings = S3Settings.from_env()
        if args.threshold_mb:
            settings = S3Settings(**{**settings.__dict__, "multipart_threshold_mb": args.threshold_mb})
        source = work / "source"
        source.mkdir()
        files = make_files(source, large_sizes(args.mb))
        rng = random.Random(1)
        small = [rng.randbytes(args.small_kb * 1024) for _ in range(args.small)]
        print(f"rclone {server.endpoint} vs file://{work / 'local'}; multipart threshold "
              f"{settings.multipart_threshold_mb} MB, parts {settings.multipart_chunksize_mb} MB, "
              f"concurrency {settings.max_concurrency}")
        local = run_store(open_store((work / "local").as_uri()), files, small)
        s3 = run_store(open_store(f"s3://{bucket}/bench", settings), files, small)
        report("file://", local)
        report("s3://", s3)
        print("s3:// time / file:// time: "
              + ", ".join(f"{label} {s3[key] / local[key]:.1f}x" for label, key in
                          (("write large", "write_large_s"), ("write small", "write_small_s"),
                           ("read large", "read_large_s"), ("read small", "read_small_s"))))
        shutil.rmtree(source)
        if args.render:
            for attempt in (1, 2):
                for name, uri in (("file://", (work / f"render-{attempt}").as_uri()),
                                  ("s3://", f"s3://{bucket}/render-{attempt}")):
                    wall, code, last = render(uri, env)
                    print(f"render #{attempt} to {name:<7} {wall:6.1f} s  exit {code}  {last}")
    finally:
        stop(server.pid)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
