"""Model figures:

1. Download throughput on loopback: sdboot's downloader (requests, hashing as it goes)
   against `curl` on the same 512 MB file from the same local server (target: >= 90 %).
2. Classifying a 2 GB safetensors file: only the header is read (target: well under
   50 ms). The file is sparse, so it costs no disk.

    python bench/models.py [-n 3] [--mb 512]
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sdboot.addons.models import classify_file  # noqa: E402
from sdboot.io.net import download  # noqa: E402


class Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=3)
    parser.add_argument("--mb", type=int, default=512)
    args = parser.parse_args()
    # tmpfs when there is one: the figures are about the transfer, not the disk's writeback
    shm = Path("/dev/shm")
    base = Path(tempfile.mkdtemp(prefix="sdboot-bench-models-",
                                 dir=shm if shm.is_dir() else None))
    try:
        served = base / "served"
        served.mkdir()
        payload = served / "model.bin"
        with payload.open("wb") as fh:
            block = bytes(range(256)) * 4096
            for _ in range(args.mb):
                fh.write(block)
        handler = functools.partial(Quiet, directory=str(served))
        httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=httpd.serve_forever, daemon=True).start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/model.bin"
        ours, ours_verified, theirs, theirs_hashed = [], [], [], []
        for i in range(args.n):
            part = base / f"ours{i}.part"
            t = time.perf_counter()
            download(url, part)  # nothing to verify against: no hashing, like curl
            ours.append(time.perf_counter() - t)
            part.unlink()
            t = time.perf_counter()
            download(url, part, verify=True)  # hashed while streaming
            ours_verified.append(time.perf_counter() - t)
            part.unlink()
            if shutil.which("curl"):
                out = base / f"curl{i}"
                t = time.perf_counter()
                subprocess.run(["curl", "-s", "-o", str(out), url], check=True)
                theirs.append(time.perf_counter() - t)
                if shutil.which("sha256sum"):  # the same work: fetch, then verify
                    subprocess.run(["sha256sum", str(out)], check=True, capture_output=True)
                    theirs_hashed.append(time.perf_counter() - t)
                out.unlink()
        httpd.shutdown()
        mb = args.mb
        o = mb / statistics.median(ours)
        ov = mb / statistics.median(ours_verified)
        print(f"download {mb} MB on loopback, median of {args.n}:")
        if theirs:
            c = mb / statistics.median(theirs)
            print(f"  no hash to check: sdboot {o:.0f} MB/s, curl {c:.0f} MB/s: {o / c:.0%} "
                  "of curl (target >= 90 %)")
            if theirs_hashed:
                ch = mb / statistics.median(theirs_hashed)
                print(f"  verified: sdboot (sha256 while streaming) {ov:.0f} MB/s, curl + "
                      f"sha256sum {ch:.0f} MB/s: {ov / ch:.0%} of that")
        else:
            print(f"  sdboot {o:.0f} MB/s, verified {ov:.0f} MB/s (curl not found)")

        big = base / "big.safetensors"
        header = json.dumps({"model.diffusion_model.input_blocks.0.0.weight":
                             {"dtype": "F16", "shape": [1], "data_offsets": [0, 2]},
                             "first_stage_model.decoder.conv_in.weight":
                             {"dtype": "F16", "shape": [1], "data_offsets": [2, 4]}}).encode()
        with big.open("wb") as fh:
            fh.write(struct.pack("<Q", len(header)) + header)
            fh.truncate(2 * 1024**3)  # sparse: 2 GB on paper
        times = []
        for _ in range(max(5, args.n)):
            t = time.perf_counter()
            kind = classify_file(big)
            times.append(time.perf_counter() - t)
        print(f"classify a 2 GB safetensors file: {kind}, median "
              f"{statistics.median(times) * 1000:.2f} ms (target well under 50 ms)")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
