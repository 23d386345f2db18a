"""How many real-time AMD streams one core sustains.

Feeds generated corpus clips frame by frame through fresh detectors (up to the
verdict, or to the end of the clip with wait_for_beep) and reports
microseconds per 20 ms frame and the streams-per-core figure (20 ms / cost),
for the product detector and the Asterisk baseline in the same process.  Each
figure is measured ``--repeat`` times; the median is printed with the best and
worst run, since a shared VM moves single runs by tens of percent.

    .venv/bin/python bench/amd_throughput.py [--clips 60] [--repeat 7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from amd.detector import StreamingDetector
from amd.registry import create, resolve
from amd.types import FRAME_SAMPLES
from sim.corpus.generate import generate


def measure(profile: str, clips: list[np.ndarray], wait: bool) -> tuple[float, int]:
    frames = 0
    t0 = time.perf_counter()
    params = resolve(profile)  # parse the profile once, as the engine does
    for x in clips:
        det = create(params)
        if wait and isinstance(det, StreamingDetector):
            det.wait_for_beep()
        n = len(x) // FRAME_SAMPLES
        for i in range(n):
            v = det.feed(x[i * FRAME_SAMPLES : (i + 1) * FRAME_SAMPLES])
            # count only frames that were analysed: without wait_for_beep a detector
            # is done (and costs nothing) after its verdict
            if v is not None and not wait:
                n = i + 1
                break
        frames += n
    return (time.perf_counter() - t0) / frames * 1e6, frames


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=60)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    clips = [c.samples for c in generate(args.clips, 5, "dev")]
    print(f"{len(clips)} clips, {sum(len(c) for c in clips) / 8000:.0f} s of audio")
    measure("asterisk", clips, False)  # warm-up: imports, caches
    runs = {
        (name, wait): [measure(name, clips, wait) for _ in range(args.repeat)]
        for name, wait in (("balanced", False), ("balanced", True), ("asterisk", False))
    }
    base_us = float(np.median([us for us, _ in runs[("asterisk", False)]]))
    for (name, wait), results in runs.items():
        us_all = sorted(us for us, _ in results)
        us = float(np.median(us_all))
        label = f"{name}{' +wait_for_beep' if wait else ''}"
        print(
            f"{label:26s} {us:6.2f} us/frame (best {us_all[0]:.2f}, worst {us_all[-1]:.2f})  "
            f"{20_000 / us:8.0f} streams/core  ({results[0][1]} frames; "
            f"x{us / base_us:.1f} the asterisk baseline)"
        )


if __name__ == "__main__":
    main()
