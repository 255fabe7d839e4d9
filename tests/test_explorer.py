"""The browser explorer: every endpoint over loopback, bad requests, concurrent clients, the files it reads,
pixel-exact agreement with the run_generator.py command it shows, uploaded photos (aligned, projected with
streamed progress, edited, refused when bad, kept apart between clients), the CLI, and a real headless Chromium."""
from __future__ import annotations

import contextlib
import http.client
import io
import json
import os
import shlex
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, run_cli
from alignment.faces import FFHQ, align_faces
from explorer.photos import MAX_PHOTOS, MAX_UPLOAD, Photo, Photos, UploadError
from explorer.render import Renderer, find_directions
from explorer.server import ExplorerServer, host_name, host_warning
from explorer.state import State, parse_state
from latent import directions as dirs
from latent.directions import network_id
from networks.serialize import load_network

sys.path.insert(0, str(ROOT / "tests" / "helpers"))
from cdp import Browser, chromium_or_skip  # noqa: E402
from photos import face, place  # noqa: E402

NET = ROOT / "tests" / "fixtures" / "stylegan2-parity" / "uncond-32"


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """A server on a free loopback port for the 32x32 test network, with a learned-style 'age' direction, a
    direction made for another network (must be skipped) and SeFa computed at start-up."""
    folder = tmp_path_factory.mktemp("directions")
    G = load_network(NET).G_ema
    net_id = network_id(NET.name, G)
    rng = np.random.RandomState(1)
    age = rng.randn(G.w_dim).astype(np.float32)
    dirs.save_directions(folder, "age", age / np.linalg.norm(age), {"network": net_id, "scales": [0.7]})
    dirs.save_directions(folder, "foreign", age / np.linalg.norm(age), {"network": "other:0badf00d", "scales": [1]})
    skipped = []
    found = find_directions(G, net_id, folder, sefa_count=3, log=skipped.append)
    photos = Photos(lambda: load_network(NET).G_ema, G.img_resolution, G.img_channels, FFHQ, "NVIDIA's FFHQ framing")
    renderer = Renderer(G, str(NET), net_id, found, str(folder), photos=photos)
    renderer.warm()
    server = ExplorerServer(renderer, "127.0.0.1", 0)
    server.start()
    server.skipped = skipped
    yield server
    server.shutdown()
    server.server_close()


def request(server, path: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None):
    """(status, headers, body) of one request over loopback."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, dict(r.getheaders()), r.read()
    finally:
        conn.close()


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))


# ------------------------------------------------------------------------------------------------ endpoints
def test_page_and_static_files(served):
    for path, ctype, needle in [("/", "text/html", b"StyleGAN2 explorer"), ("/app.js", "text/javascript", b"coalesc"),
                                ("/style.css", "text/css", b"#face")]:
        status, headers, body = request(served, path)
        assert status == 200 and headers["Content-Type"].startswith(ctype) and needle in body
        assert "default-src 'self'" in headers["Content-Security-Policy"]
    status, headers, body = request(served, "/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["Content-Length"]) > 100


def test_info_lists_the_directions_for_this_network_only(served):
    status, _, body = request(served, "/api/info")
    info = json.loads(body)
    assert status == 200 and info["resolution"] == 32 and info["num_ws"] == 8
    assert [d["name"] for d in info["directions"]] == ["age", "sefa:0", "sefa:1", "sefa:2"]
    assert info["groups"] == {"coarse": [0, 1, 2, 3], "middle": [4, 5, 6, 7]}
    assert any("foreign" in line and "made for network other" in line for line in served.skipped)


def test_render_png_cache_and_download(served):
    q = "/api/render.png?seed=11&psi=0.8&e.age=1.5&mix=4&styles=middle"
    status, headers, body = request(served, q)
    assert status == 200 and headers["Content-Type"] == "image/png" and headers["X-Cache"] == "miss"
    assert float(headers["X-Render-Ms"]) > 0
    img = Image.open(io.BytesIO(body))
    assert img.size == (32, 32) and img.text["seed"] == "11" and img.text["e.age"] == "1.5"
    assert img.text["command"].startswith("python run_generator.py")
    status, headers, again = request(served, q)
    assert headers["X-Cache"] == "hit" and again == body
    status, headers, dl = request(served, q + "&download=1")
    assert status == 200 and headers["Content-Disposition"] == 'attachment; filename="seed0011-explorer.png"'
    plain = pixels(request(served, "/api/render.png?seed=11")[2])
    assert np.abs(plain.astype(int) - pixels(body).astype(int)).max() > 10        # the edits change the face


def test_every_control_changes_the_image(served):
    base = pixels(request(served, "/api/render.png?seed=2")[2])
    for q in ["psi=0.5", "noise=none", "mix=7&styles=coarse", "e.sefa:0=3", "e.age=-3", "b=9&t=30"]:
        status, _, body = request(served, f"/api/render.png?seed=2&{q}")
        assert status == 200 and not np.array_equal(pixels(body), base), q
    # mixing with no group toggled and a zero strength leave the face unchanged; a walk starts on it and ends on
    # the other face (to 1/255: run_generator.py maps the walk's two seeds in one batch, which rounds differently)
    for q in ["mix=7", "e.age=0"]:
        assert np.array_equal(pixels(request(served, f"/api/render.png?seed=2&{q}")[2]), base), q
    start = pixels(request(served, "/api/render.png?seed=2&b=9&t=0")[2])
    assert np.abs(start.astype(int) - base.astype(int)).max() <= 1
    end = pixels(request(served, "/api/render.png?seed=2&b=9&t=60")[2])
    assert np.abs(end.astype(int) - pixels(request(served, "/api/render.png?seed=9")[2]).astype(int)).max() <= 1


def test_command_endpoint(served):
    status, _, body = request(served, "/api/command?seed=5&psi=0.6&noise=none")
    c = json.loads(body)
    assert status == 200 and c["exact"] and c["output"] == "out/seed0005.png"
    assert c["command"] == f"python run_generator.py --network {NET} --seeds 5 --trunc 0.6 --noise-mode none"
    c = json.loads(request(served, "/api/command?seed=5&e.age=1&e.sefa:1=2")[2])
    assert not c["exact"] and "other edits" in c["note"]
    c = json.loads(request(served, "/api/command?seed=5&b=8&t=12")[2])
    assert "--mode interpolate --seeds 5,8 --frames 60" in c["command"] and "frame 12" in c["output"]
    c = json.loads(request(served, "/api/command?seed=5&e.sefa:1=2")[2])
    assert " --mode directions --method sefa && " in c["command"]       # SeFa was computed, not read: save it first


@pytest.mark.parametrize("query,message", [
    ("seed=-1", "seed must be a whole number"), ("seed=4294967296", "out of range"), ("seed=abc", "whole number"),
    ("psi=2.5", "psi 2.5 is outside 0..2"), ("psi=nan", "outside"), ("psi=x", "must be a number"),
    ("noise=loud", "noise must be one of"), ("e.nose=1", "unknown direction 'nose'"),
    ("e.foreign=1", "unknown direction"), ("e.age=11", "outside -10..10"), ("styles=fine", "not one of"),
    ("mix=1&styles=coarse,bogus", "not one of"), ("t=61&b=1", "out of range"), ("color=red", "unknown parameter"),
    ("seed=1&seed=2", "more than once"), ("&".join(f"e.x{i}=1" for i in range(70)), "too many"),
])
def test_bad_requests_get_400_with_a_message(served, query, message):
    for endpoint in ("render.png", "command"):
        status, headers, body = request(served, f"/api/{endpoint}?{query}")
        assert status == 400 and headers["Content-Type"] == "application/json", (query, body)
        assert message in json.loads(body)["error"], body


def test_oversized_and_odd_requests_get_4xx(served):
    assert request(served, "/api/render.png?seed=1&psi=" + "1" * 5000)[0] == 414
    assert request(served, "/api/render.png?seed=1", body=b"x" * 10, headers={"Content-Length": "10"})[0] == 413
    for method in ("POST", "PUT", "DELETE"):
        status, headers, _ = request(served, "/api/render.png", method=method, body=b"x" * 100_000)
        assert status == 405 and headers["Allow"] == "GET, HEAD"
    assert request(served, "/api/info", headers={"Host": "evil.example:7860"})[0] == 421     # DNS rebinding
    assert request(served, "/nope")[0] == 404


def test_reads_no_file_it_was_not_started_with(served):
    """Paths that name files (ours, the system's, through '..' or encodings) are 404, and serving opens nothing."""
    opened: list[str] = []
    watching = threading.Event()

    def hook(event, args):
        if watching.is_set() and event == "open" and isinstance(args[0], (str, bytes)):
            opened.append(str(args[0]))
    sys.addaudithook(hook)
    watching.set()
    try:
        for path in ["/../run_explorer.py", "/static/app.js", "/explorer/server.py", "/%2e%2e/%2e%2e/etc/passwd",
                     "/..%2f..%2fetc%2fpasswd", "//etc/passwd", "/etc/passwd", "/app.js/../../README.md",
                     "/api/render.png/../../../etc/passwd"]:
            status, _, body = request(served, path)
            assert status == 404 and b"root:" not in body and b"import" not in body, path
        for path in ["/", "/app.js", "/api/info", "/api/command?seed=3", "/api/render.png?seed=123&psi=0.3"]:
            assert request(served, path)[0] == 200
    finally:
        watching.clear()
    ours = [p for p in opened if not p.startswith(("/proc/", "/sys/", "/dev/"))]
    assert not ours, ours


def test_concurrent_clients_get_their_own_images(served):
    """Eight clients at once, each a different view: every answer is the image of the view it asked for."""
    views = [f"seed={s}&psi={0.3 + 0.1 * (s % 5)}" + ("&e.age=2" if s % 2 else "&mix=3&styles=coarse")
             + ("&b=5&t=20" if s % 3 == 0 else "") for s in range(40, 56)]
    served.renderer.cache.clear()
    results: dict[str, list[bytes]] = {v: [] for v in views}
    errors = []

    def client(k):
        try:
            for v in views[k::4] + views[k::4]:
                status, _, body = request(served, "/api/render.png?" + v)
                assert status == 200
                results[v].append(body)
        except Exception as exc:        # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=client, args=(k % 4,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, errors
    for v in views:
        params = dict(p.split("=") for p in v.split("&"))
        want = served.renderer.image(parse_state(params, served.renderer.directions.keys(), served.renderer.groups))
        assert len(results[v]) == 4 and all(np.array_equal(pixels(b), want) for b in results[v]), v
    assert request(served, "/api/info")[0] == 200


def test_state_round_trip_and_host_rules():
    s = parse_state({"seed": "3", "psi": "0.70", "e.age": "1.234", "e.b": "0", "styles": "middle,coarse", "mix": "2"},
                    {"age", "b"})
    assert s == State(seed=3, psi=0.7, mix=2, styles=("coarse", "middle"), edits=(("age", 1.23),))
    assert parse_state(s.query(), {"age"}) == s
    assert host_warning("127.0.0.1") is None and host_warning("localhost") is None
    assert "not loopback" in host_warning("0.0.0.0")
    assert [host_name(h) for h in ("localhost:7860", "[::1]:80", "[::1]", "127.0.0.1")] == [
        "localhost", "::1", "::1", "127.0.0.1"]


# ------------------------------------------------------------------------------------------------ exactness
@pytest.mark.parametrize("query", ["seed=5&psi=0.6", "seed=7&psi=0.8&e.age=1.5", "seed=6&psi=0.7&mix=12&styles=middle",
                                   "seed=3&e.sefa:0=-2.5&noise=none"])
def test_image_equals_what_the_shown_command_writes(served, query, tmp_path):
    """Run the command the page shows; the file it names holds exactly the explorer's pixels."""
    c = json.loads(request(served, "/api/command?" + query)[2])
    assert c["exact"], c
    for part in c["command"].split(" && "):
        args = shlex.split(part)
        assert args[:2] == ["python", "run_generator.py"]
        r = run_cli(*args[1:], "--outdir", str(tmp_path / "out"))
        assert r.returncode == 0, r.stderr
    name, _, where = c["output"].partition(", ")
    written = np.asarray(Image.open(tmp_path / name))          # out/... -> tmp_path/out/...
    if where == "left half":
        written = written[:, :written.shape[1] // 2]
    assert np.array_equal(pixels(request(served, "/api/render.png?" + query)[2]), written)


# ------------------------------------------------------------------------------------------------ photos
def jpeg(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="JPEG", quality=92)
    return buf.getvalue()


def raw_photo(i: int, angle: float = 15.0) -> bytes:
    """A face crop of data/faces rotated, enlarged and placed off-centre in a 900x700 photo, as JPEG."""
    return jpeg(place(face(i), angle, 1.6, at=(520, 330), canvas=(900, 700)))


def upload(server, data: bytes, steps: int = 20, ctype: str = "image/jpeg", headers: dict | None = None,
           tune_steps: int = 20):
    return request(server, f"/api/photo?steps={steps}&tune_steps={tune_steps}", "POST",
                   {"Content-Type": ctype, **(headers or {})}, data)


def events(server, token: str) -> list[dict]:
    """Every server-sent event of a photo's projection, to the end of the stream."""
    host, port = server.server_address[:2]
    conn = http.client.HTTPConnection(host, port, timeout=300)
    try:
        conn.request("GET", f"/api/photo/events?photo={token}")
        r = conn.getresponse()
        assert r.status == 200 and r.getheader("Content-Type") == "text/event-stream"
        return [json.loads(line[5:]) for line in r.read().decode().splitlines() if line.startswith("data:")]
    finally:
        conn.close()


def test_a_photo_is_aligned_projected_with_progress_and_edited(served, tmp_path):
    """Upload a raw photo: the aligned crop is the aligner's, progress arrives step by step through the projection
    and the tuning, the tuned reconstruction is closer to the photo, the photo's view is pixel-identical to
    run_generator.py --projected-w with the downloaded projected_w.npz and tuned.keras (plain and edited), and
    the seeds' views are untouched by the photo's noise maps and tuned weights."""
    data = raw_photo(5)
    served.renderer.cache.clear()
    seed_view = pixels(request(served, "/api/render.png?seed=2")[2])
    status, _, body = upload(served, data)
    reply = json.loads(body)
    assert status == 202 and reply["faces"] == 1 and reply["steps"] == 20 and reply["tune_steps"] == 20, reply
    token = reply["photo"]
    want = align_faces(np.asarray(Image.open(io.BytesIO(data)).convert("RGB")), 32, "largest", FFHQ)[0][0]
    assert np.array_equal(pixels(request(served, f"/api/photo/aligned.png?photo={token}")[2]), want)
    stream = events(served, token)
    steps = [e["step"] for e in stream if e["state"] == "projecting"]
    tuning = [e["step"] for e in stream if e["state"] == "tuning"]
    assert stream[-1]["state"] == "done" and stream[-1]["step"] == 40, stream[-1]
    assert len(steps) >= 10 and steps == sorted(steps) and steps[-1] == 20       # streamed, not only the end
    assert len(tuning) >= 10 and tuning == sorted(tuning) and tuning[-1] == 40
    assert stream[-1]["psnr"]["tuned"] > stream[-1]["psnr"]["w"] + 1, stream[-1]["psnr"]
    distances = [e["distance"] for e in stream if e["distance"] is not None]
    assert stream[-1]["ms_per_step"] > 0 and distances[-1] < distances[0]
    frame = pixels(request(served, f"/api/photo/frame.png?photo={token}")[2])
    status, headers, npz = request(served, f"/api/photo/projected_w.npz?photo={token}")
    assert status == 200 and headers["Content-Disposition"] == 'attachment; filename="projected_w.npz"'
    (tmp_path / "projected_w.npz").write_bytes(npz)
    status, headers, keras_file = request(served, f"/api/photo/tuned.keras?photo={token}")
    assert status == 200 and headers["Content-Disposition"] == 'attachment; filename="tuned.keras"'
    (tmp_path / "tuned.keras").write_bytes(keras_file)
    for query in (f"seed=0&photo={token}", f"seed=0&photo={token}&e.age=2.5"):
        status, _, png = request(served, "/api/render.png?" + query)
        assert status == 200 and "photo" not in Image.open(io.BytesIO(png)).text     # the token stays private
        c = json.loads(request(served, "/api/command?" + query)[2])
        assert c["exact"] and "--projected-w projected_w.npz" in c["command"], c
        args = [str(tmp_path / a) if a == "projected_w.npz" else a for a in shlex.split(c["command"])]
        assert args[:2] == ["python", "run_generator.py"]
        r = run_cli(*args[1:], "--outdir", str(tmp_path / "out"))
        assert r.returncode == 0, r.stderr[-2000:]
        name, _, where = c["output"].partition(", ")
        written = np.asarray(Image.open(tmp_path / name))              # out/... -> tmp_path/out/...
        if where == "left half":
            written = written[:, :written.shape[1] // 2]
        assert np.array_equal(pixels(png), written), query
        if "e.age" not in query:
            assert np.array_equal(pixels(png), frame)          # the projection's last image is the photo's view
        else:
            assert np.abs(pixels(png).astype(int) - frame.astype(int)).max() > 10    # the edit moves the face
    served.renderer.cache.clear()
    assert np.array_equal(pixels(request(served, "/api/render.png?seed=2")[2]), seed_view)


def test_bad_uploads_get_4xx_with_a_message(served):
    blank = io.BytesIO()
    Image.new("RGB", (640, 480), (90, 100, 110)).save(blank, format="PNG")
    tiny = jpeg(place(face(1), 0, 0.12, canvas=(900, 700)))                      # eyes a few px apart
    wide, bomb = io.BytesIO(), io.BytesIO()                                       # 120 and 400 megapixels, small files
    Image.new("1", (12000, 10000)).save(wide, format="PNG")
    Image.new("1", (20000, 20000)).save(bomb, format="PNG")
    for data, status, message in [
            (b"", 400, "empty"), (b"GIF89a not really" * 10, 415, "not an image"),
            (blank.getvalue(), 422, "no face found in the photo"), (tiny, 422, "in the photo"),
            (b"\0" * (MAX_UPLOAD + 1), 413, "at most 20 MiB"), (wide.getvalue(), 413, "120 megapixels"),
            (bomb.getvalue(), 413, "400 megapixels; at most 100 are read")]:
        got, headers, body = upload(served, data)
        assert got == status and message in json.loads(body)["error"], (status, body)
        assert headers["Content-Type"] == "application/json"
    assert upload(served, raw_photo(1), steps=5)[0] == 400                          # steps out of range
    assert upload(served, raw_photo(1), ctype="text/plain")[0] == 415               # sendable cross-site unasked
    assert upload(served, raw_photo(1), headers={"Host": "evil.example:7860"})[0] == 421
    assert request(served, "/api/photo/status?photo=" + "A" * 22)[0] == 404         # never uploaded
    assert request(served, "/api/render.png?seed=1&photo=" + "A" * 22)[0] == 404
    assert request(served, "/api/photo/status?photo=../../etc")[0] == 400
    assert request(served, "/api/render.png?photo=short")[0] == 400
    assert upload(served, b"x" * 100, headers={"Transfer-Encoding": "chunked"})[0] == 411
    assert upload(served, raw_photo(1), headers={"Content-Length": "\u00b2"})[0] == 411        # '²'.isdigit()
    assert request(served, "/api/photo?steps=%C2%B2", "POST", {"Content-Type": "image/jpeg"}, b"x")[0] == 400
    assert request(served, "/api/render.png?seed=%C2%B2")[0] == 400
    status, headers, _ = request(served, "/api/photo")
    assert status == 405 and headers["Allow"] == "POST"


def test_clients_see_only_their_own_photos(served):
    """Two clients upload at once: each gets its own token and its own face; nothing lists photos."""
    results = {}

    def client(i):
        status, _, body = upload(served, raw_photo(i, angle=-10 + 8 * i), steps=10)
        results[i] = (status, json.loads(body))
    threads = [threading.Thread(target=client, args=(i,)) for i in (2, 3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert all(status == 202 for status, _ in results.values()), results
    tokens = {i: body["photo"] for i, (_, body) in results.items()}
    assert tokens[2] != tokens[3]
    crops = {i: pixels(request(served, f"/api/photo/aligned.png?photo={t}")[2]) for i, t in tokens.items()}
    for i, t in tokens.items():
        want = align_faces(np.asarray(Image.open(io.BytesIO(raw_photo(i, -10 + 8 * i))).convert("RGB")), 32)[0][0]
        assert np.array_equal(crops[i], want)
        assert events(served, t)[-1]["state"] == "done"
    views = [pixels(request(served, f"/api/render.png?photo={t}")[2]) for t in tokens.values()]
    assert not np.array_equal(*views)
    info = request(served, "/api/info")[2].decode()
    assert not any(t in info for t in tokens.values()) and json.loads(info)["photos"]["available"]


def test_photos_held_are_bounded():
    """MAX_PHOTOS held: the least recently used finished photo makes room; with none finished, 503."""
    store = Photos(lambda: None, 32, 3, FFHQ, "")
    blank = np.zeros([32, 32, 3], np.uint8)
    for k in range(MAX_PHOTOS):
        store.photos[f"t{k:021d}"] = Photo(f"t{k:021d}", blank, 1, 50.0, 10, state="done", used=float(k))
    store.get(f"t{0:021d}")                                          # used just now: kept
    store._make_room(evict=False)                                    # an upload not yet decoded frees nothing
    assert len(store.photos) == MAX_PHOTOS
    store._make_room()
    assert f"t{0:021d}" in store.photos and f"t{1:021d}" not in store.photos and len(store.photos) == MAX_PHOTOS - 1
    for p in store.photos.values():
        p.state = "projecting"
    store.photos["x"] = Photo("x", blank, 1, 50.0, 10, state="projecting")
    with pytest.raises(UploadError) as err:
        store._make_room()
    assert err.value.status == 503


def test_uploads_are_admitted_before_they_are_read():
    """At most MAX_READING uploads are read, decoded and aligned at once: one more is refused (503) before its body
    is read, and a place frees when an upload is done (or fails)."""
    from explorer.photos import MAX_READING
    store = Photos(lambda: None, 32, 3, FFHQ, "")
    with contextlib.ExitStack() as held:
        for _ in range(MAX_READING):
            held.enter_context(store.admit())
        with pytest.raises(UploadError) as err:
            held.enter_context(store.admit())
        assert err.value.status == 503 and "being read" in str(err.value)
    with pytest.raises(ValueError), store.admit():
        raise ValueError("a failed decode")
    with contextlib.ExitStack() as held:                           # every place is free again
        for _ in range(MAX_READING):
            held.enter_context(store.admit())


# ------------------------------------------------------------------------------------------------ the script
def test_run_explorer_serves_and_stops(tmp_path):
    proc = subprocess.Popen([sys.executable, "run_explorer.py", "--network", str(NET), "--port", "0",
                             "--directions", str(tmp_path)], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "explorer for uncond-32:" in line and "http://127.0.0.1:" in line, (line, proc.stderr.read())
        port = int(line.split("http://127.0.0.1:")[1].split("/")[0])
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/api/render.png?seed=1&e.sefa:4=1")
        assert conn.getresponse().status == 200
    finally:
        proc.terminate()
        proc.wait(30)


@pytest.mark.parametrize("args,message", [
    (["--network", "nowhere.keras"], "does not exist"),
    (["--network", str(NET), "--port", "70000"], "flag --port=70000: 70000 is not an integer in the range [0, 65535]"),
    (["--network", str(NET), "--class", "1"], "network is unconditional"),
    (["--network", str(NET), "--framing", "nowhere.json"], "--framing nowhere.json does not exist"),
])
def test_run_explorer_errors(args, message):
    r = run_cli("run_explorer.py", *args, timeout=120)
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr, r.stderr


# ------------------------------------------------------------------------------------------------ a real browser
IMAGE_SUM = ("(() => { const i = document.getElementById('face'); const c = document.createElement('canvas');"
             " c.width = i.naturalWidth; c.height = i.naturalHeight; const g = c.getContext('2d');"
             " g.drawImage(i, 0, 0); return Array.from(g.getImageData(0, 0, c.width, c.height).data).join(','); })()")


def test_browser_moves_sliders_and_the_image_changes(served, tmp_path):
    """Headless Chromium (Debian's package; `make test` installs it through scripts/test_deps.sh): load a view,
    drag the truncation slider and an edit slider with the mouse; each drag changes the image and the URL, and
    no request fails."""
    binary = chromium_or_skip()
    browser = Browser(binary, tmp_path / "profile")
    try:
        browser.call("Page.enable")
        browser.call("Page.navigate", url=served.url + "?seed=4&psi=1")
        browser.wait("window.explorer && window.explorer.renders >= 1 && !window.explorer.busy")
        browser.wait("document.getElementById('command').textContent.length > 0")
        first = browser.js(IMAGE_SUM)
        for slider, param in [("psi", "psi="), ("edit-age", "e.age=")]:
            before, renders = browser.js(IMAGE_SUM), browser.js("window.explorer.renders")
            box = browser.js(f"JSON.parse(JSON.stringify(document.getElementById('{slider}').getBoundingClientRect()))")
            y = box["y"] + box["height"] / 2
            browser.drag(box["x"] + box["width"] * 0.5, box["x"] + box["width"] * 0.15, y)
            browser.wait(f"window.explorer.renders > {renders} && !window.explorer.busy")
            assert browser.js(IMAGE_SUM) != before, slider
            assert param in browser.js("location.search"), browser.js("location.search")
        assert browser.js(IMAGE_SUM) != first
        assert browser.js("window.explorer.error") == ""
        query = browser.js("window.explorer.lastQuery")
        assert "psi=0.3" in query or "psi=0.2" in query, query           # dragged to 15 % of 0..2
        # the page's image is the server's image of the URL's view
        shown = np.array([int(v) for v in browser.js(IMAGE_SUM).split(",")], np.uint8).reshape(32, 32, 4)[..., :3]
        assert np.array_equal(shown, pixels(request(served, "/api/render.png?" + query)[2]))
        browser.wait("Array.from(document.querySelectorAll('#grid img')).every(i => i.complete && i.naturalWidth)")
        browser.screenshot(tmp_path / "explorer.png")
        if os.environ.get("EXPLORER_SCREENSHOT"):                      # docs/explorer.png is made this way
            browser.screenshot(Path(os.environ["EXPLORER_SCREENSHOT"]))
    finally:
        browser.close()
    assert (tmp_path / "explorer.png").stat().st_size > 10_000


def test_browser_uploads_a_photo_and_edits_it(served, tmp_path):
    """Headless Chromium: choose a photo with the file picker, watch the projection's progress, then drag the age
    slider: the image changes. A photo without a face and an oversized file are refused with the server's words."""
    binary = chromium_or_skip()
    photo, blank, huge = tmp_path / "me.jpg", tmp_path / "wall.png", tmp_path / "huge.jpg"
    photo.write_bytes(raw_photo(7, angle=-12))
    Image.new("RGB", (500, 400), (200, 180, 160)).save(blank)
    huge.write_bytes(b"\xff\xd8" + b"\0" * (MAX_UPLOAD + 10))
    browser = Browser(binary, tmp_path / "profile")

    def choose(path: Path) -> None:
        root = browser.call("DOM.getDocument")["root"]["nodeId"]
        node = browser.call("DOM.querySelector", nodeId=root, selector="#photo-file")["nodeId"]
        browser.call("DOM.setFileInputFiles", nodeId=node, files=[str(path)])
    try:
        browser.call("Page.enable")
        browser.call("Page.navigate", url=served.url + "?seed=4")
        browser.wait("window.explorer && window.explorer.renders >= 1 && !window.explorer.busy")
        seed_image = browser.js(IMAGE_SUM)
        browser.js("document.getElementById('photo-steps').value = '10'")
        browser.js("const o = document.createElement('option'); o.value = '20'; "
                   "document.getElementById('photo-tune').append(o); "
                   "document.getElementById('photo-tune').value = '20'")
        choose(blank)
        browser.wait("window.explorer.photoError !== ''")
        assert "no face found" in browser.js("window.explorer.photoError")
        choose(huge)
        browser.wait("window.explorer.photoError.includes('MiB')")
        assert "at most 20 MiB" in browser.js("window.explorer.photoError")
        choose(photo)
        browser.wait("window.explorer.photo && window.explorer.photo.state === 'projecting'")
        browser.wait("window.explorer.photo.state === 'done' && location.search.includes('photo=')", timeout=240)
        browser.wait("!window.explorer.busy && window.explorer.lastQuery.includes('photo=')")
        assert browser.js("document.getElementById('photo-progress').value") == 30
        assert "and tuned in 20 (PSNR" in browser.js("document.getElementById('photo-status').textContent")
        assert not browser.js("document.getElementById('photo-tuned').hidden")
        assert browser.js("document.getElementById('photo-frame').naturalWidth") == 32
        projected = browser.js(IMAGE_SUM)
        assert projected != seed_image and browser.js("window.explorer.error") == ""
        renders = browser.js("window.explorer.renders")
        box = browser.js("JSON.parse(JSON.stringify(document.getElementById('edit-age').getBoundingClientRect()))")
        browser.drag(box["x"] + box["width"] * 0.5, box["x"] + box["width"] * 0.95, box["y"] + box["height"] / 2)
        browser.wait(f"window.explorer.renders > {renders} && !window.explorer.busy")
        assert "e.age=" in browser.js("location.search") and browser.js(IMAGE_SUM) != projected
        query = browser.js("window.explorer.lastQuery")
        shown = np.array([int(v) for v in browser.js(IMAGE_SUM).split(",")], np.uint8).reshape(32, 32, 4)[..., :3]
        assert np.array_equal(shown, pixels(request(served, "/api/render.png?" + query)[2]))
        browser.screenshot(tmp_path / "photo.png")
        if os.environ.get("EXPLORER_PHOTO_SCREENSHOT"):
            browser.screenshot(Path(os.environ["EXPLORER_PHOTO_SCREENSHOT"]))
    finally:
        browser.close()


def test_an_encoder_shows_a_first_reconstruction_before_the_projection_steps():
    """With the network's encoder, the worker's first frame is the encoder's guess (frame_step 0, before any
    projection step), and the projection starts from it."""
    from latent.encoder import train_encoder
    G = load_network(NET).G_ema
    enc = train_encoder(G, network_id(NET.name, G), samples=256, epochs=1, log=lambda m: None)
    seen = []

    class Recording(Photos):
        def _update(self, photo, **changes):
            seen.append((changes.get("frame_step"), changes.get("step")))
            super()._update(photo, **changes)

    photos = Recording(lambda: load_network(NET).G_ema, G.img_resolution, G.img_channels, FFHQ, "", encoder=enc)
    try:
        photo = photos.add(raw_photo(5), steps=10, tune_steps=0)
        version = -1
        while photo.state not in ("done", "failed"):
            version = photos.wait(photo, version, 120)["version"]
        assert photo.state == "done", photo.error
    finally:
        photos.close()
    frames = [f for f, _ in seen if f is not None]
    assert frames[0] == 0 and frames[-1] == 10, frames
    first_step = next(i for i, (_, s) in enumerate(seen) if s is not None)
    assert seen.index((0, None)) < first_step
