"""Benchmark: explorer update latency on CPU, per view kind, for the 32x32 test network and a 64x64 generator.

    python benchmarks/bench_explorer.py [--reps 30]

For each network: render time (Renderer.png, cache off: what X-Render-Ms reports) and end-to-end time of a
request over loopback (HTTP/1.1 keep-alive, PNG received) for a psi change, an edit, a style mix and an
interpolation frame; then a simulated 1-second slider drag at 200 input events/s with the page's coalescing
(one request in flight, only the latest value sent next): renders made, and delay from release to final image.
The 64x64 generators are random-initialised (a trained network of the same shape costs the same): the README's
UTKFace run's width (channel_base 4096, channel_max 128, 2 mapping layers) and the generator benchmark's
setting (channel_base 8192, channel_max 256, 8 mapping layers; the `small` preset's width).
"""
from __future__ import annotations

import argparse
import http.client
import statistics
import threading
import time
from pathlib import Path

import benchlib  # noqa: F401  (puts the repo root on sys.path)

from common.cli import start_tensorflow

ROOT = Path(__file__).resolve().parents[1]


def stats(ms: list[float]) -> str:
    ms = sorted(ms)
    return f"median {statistics.median(ms):5.1f} ms, p90 {ms[int(0.9 * (len(ms) - 1))]:5.1f} ms"


def drag(server, base: str, events: int = 200, period: float = 0.005) -> tuple[int, float]:
    """Slider values at `period` s intervals; the client sends the latest one whenever nothing is in flight.
    Returns (renders made, ms from the last event to the image of the last value)."""
    latest = {"v": None, "done": False}
    conn = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
    sent = 0
    last_event = [0.0]

    def slider():
        for i in range(events):
            latest["v"] = round(0.2 + 1.2 * i / (events - 1), 2)
            last_event[0] = time.perf_counter()
            time.sleep(period)
        latest["done"] = True
    t = threading.Thread(target=slider)
    t.start()
    shown = None
    while True:
        v = latest["v"]
        if v is None or v == shown:
            if latest["done"] and v == shown:
                break
            time.sleep(0.001)
            continue
        conn.request("GET", f"/api/render.png?{base}&psi={v}")
        conn.getresponse().read()
        sent += 1
        shown = v
    t.join()
    return sent, (time.perf_counter() - last_event[0]) * 1000


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=30)
    args = ap.parse_args()
    start_tensorflow()
    from explorer.render import Renderer, find_directions
    from explorer.server import ExplorerServer
    from explorer.state import State
    from latent.directions import network_id
    from networks.serialize import load_network
    from networks.stylegan2 import Generator
    fixture = ROOT / "tests" / "fixtures" / "stylegan2-parity" / "uncond-32"
    nets = [("32x32 test network", load_network(fixture).G_ema),
            ("64x64, cbase 4096, cmax 128, 2 mapping layers",
             Generator(img_resolution=64, channel_base=4096, channel_max=128, mapping_layers=2)),
            ("64x64, cbase 8192, cmax 256", Generator(img_resolution=64, channel_base=8192, channel_max=256))]
    for label, G in nets:
        net_id = network_id(label, G)
        r = Renderer(G, label, net_id, find_directions(G, net_id, Path("/nonexistent"), 3), cache_size=0)
        r.warm()
        server = ExplorerServer(r, "127.0.0.1", 0)
        server.start()
        conn = http.client.HTTPConnection(*server.server_address[:2], timeout=60)
        print(f"{label} ({G.img_resolution}x{G.img_resolution}):")
        kinds = [("psi", lambda i: State(seed=7, psi=round(0.3 + i / 100, 2))),
                 ("edit sefa:0", lambda i: State(seed=7, psi=0.7, edits=(("sefa:0", round(-3 + i / 10, 2)),))),
                 ("style mix", lambda i: State(seed=7, psi=0.7 + i / 1000, mix=100 + i, styles=("coarse",))),
                 ("interpolation", lambda i: State(seed=7, b=9, t=i % 61, psi=0.7 + i / 1000))]
        for kind, make in kinds:
            render_ms = [r.png(make(i))[1] for i in range(args.reps)]
            total = []
            for i in range(args.reps, 2 * args.reps):
                q = "&".join(f"{k}={v}" for k, v in make(i).query().items())
                t0 = time.perf_counter()
                conn.request("GET", "/api/render.png?" + q)
                conn.getresponse().read()
                total.append((time.perf_counter() - t0) * 1000)
            print(f"  {kind:14s} render {stats(render_ms)}; end to end over loopback {stats(total)}", flush=True)
        sent, after = drag(server, "seed=11")
        print(f"  drag: 200 psi values in 1 s -> {sent} renders; final image {after:.0f} ms after the last move")
        server.shutdown()
        server.server_close()


if __name__ == "__main__":
    main()
