"""Published networks by URL or short name: downloads through a loopback HTTP server (never the internet)."""
from __future__ import annotations

import http.server
import io
import socket
import threading

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, run_cli
from common.download import download
from common.errors import UserError
from networks import pretrained
from networks.locate import find_network
from networks.serialize import load_network

PKL = ROOT / "tests" / "fixtures" / "nvidia-pickles" / "ada-pytorch-32.pkl"
REF = ROOT / "tests" / "fixtures" / "nvidia-pickles" / "reference.npz"


class Handler(http.server.BaseHTTPRequestHandler):
    body = PKL.read_bytes()
    hits: dict[str, int] = {}

    def do_GET(self) -> None:                          # noqa: N802 (http.server's name)
        Handler.hits[self.path] = Handler.hits.get(self.path, 0) + 1
        if self.path.startswith("/missing"):
            self.send_error(404, "Not Found")
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        # /cut...: the connection drops halfway, after a Content-Length promising the whole file
        self.wfile.write(self.body[: len(self.body) // 2] if self.path.startswith("/cut") else self.body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def server():
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(autouse=True)
def offline_env(tmp_path, monkeypatch):
    """Downloads into tmp_path; loopback never through a proxy."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "*")
    monkeypatch.setenv("NO_PROXY", "*")
    monkeypatch.setenv("STYLEGAN2_TF_NETWORKS", str(tmp_path / "nets"))
    monkeypatch.setenv("STYLEGAN2_TF_CACHE", str(tmp_path / "cache"))


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_shows_progress_and_writes_the_file(server, tmp_path):
    log = io.StringIO()
    path = download(f"{server}/a/net.pkl", tmp_path / "x" / "net.pkl", stream=log)
    assert path.read_bytes() == PKL.read_bytes()
    line = log.getvalue().strip().splitlines()[-1]
    size_kib = (PKL.stat().st_size + 1023) // 1024
    assert line.startswith("downloading net.pkl [") and f"{size_kib}/{size_kib} " in line and "KiB/s" in line
    assert sorted(p.name for p in path.parent.iterdir()) == ["net.pkl"]


def test_url_is_downloaded_once_and_converted_once_beside_it(server, tmp_path):
    url = f"{server}/once/ada.pkl"
    first = find_network(url)
    assert first.parent == tmp_path / "nets" and first.suffix == ".pkl" and Handler.hits[url[len(server):]] == 1
    assert find_network(url) == first and Handler.hits[url[len(server):]] == 1          # cache hit
    bundle = load_network(url)
    keras_file = first.with_suffix(".keras")
    assert keras_file.exists() and bundle.metadata["format"] == "stylegan2-ada-pytorch"
    stamp = keras_file.stat().st_mtime_ns
    again = load_network(url)                                                            # from the .keras
    assert keras_file.stat().st_mtime_ns == stamp and Handler.hits[url[len(server):]] == 1
    z = np.random.RandomState(0).randn(1, bundle.G_ema.z_dim).astype(np.float32)
    np.testing.assert_array_equal(again.G_ema(z, noise_mode="const"), bundle.G_ema(z, noise_mode="const"))


def test_short_names_resolve_through_the_table(server, monkeypatch):
    monkeypatch.setitem(pretrained.PUBLISHED, "tiny-32", pretrained.Published(f"{server}/named/ada.pkl", "test"))
    assert pretrained.is_remote("tiny-32") and pretrained.is_remote("ffhq-1024")
    path = find_network("tiny-32")
    assert path.exists() and Handler.hits["/named/ada.pkl"] == 1
    assert pretrained.PUBLISHED["ffhq-1024"].url.endswith("/stylegan2-ffhq-1024x1024.pkl")


def test_truncated_transfer_leaves_nothing_that_is_reused(server, tmp_path):
    url = f"{server}/cut/ada.pkl"
    for attempt in (1, 2):
        with pytest.raises(UserError, match="truncated|failed after") as err:
            find_network(url)
        assert "\n" not in str(err.value) and url in str(err.value)
        assert Handler.hits["/cut/ada.pkl"] == attempt                  # the second call downloads again
        assert not list((tmp_path / "nets").iterdir())                  # no file, no .part left


def test_wrong_checksum_keeps_nothing(server, tmp_path):
    with pytest.raises(UserError, match="sha256"):
        download(f"{server}/sum/ada.pkl", tmp_path / "d" / "ada.pkl", sha256="0" * 64, progress=False)
    assert not list((tmp_path / "d").iterdir())


@pytest.mark.parametrize("where,message", [("missing", "HTTP 404"), ("closed", "cannot download")])
def test_404_and_unreachable_are_one_line_errors(server, where, message):
    url = f"{server}/missing/net.pkl" if where == "missing" else f"http://127.0.0.1:{closed_port()}/net.pkl"
    with pytest.raises(UserError, match=message) as err:
        find_network(url)
    text = str(err.value)
    assert "\n" not in text and url in text and "--network /path/to/net.pkl" in text


def test_cli_generates_from_a_url_and_fails_in_one_line(server, tmp_path):
    ref = np.load(REF)
    r = run_cli("run_generator.py", "--network", f"{server}/cli/ada.pkl", "--seeds", "1", "--trunc", "0.7",
                "--outdir", str(tmp_path / "out"))
    assert r.returncode == 0, r.stderr
    png = np.asarray(Image.open(tmp_path / "out" / "seed0001.png")).astype(int)
    assert np.abs(png - ref["ada32_u8_psi07"][1]).max() <= 1
    assert "downloading ada-" in r.stderr
    r = run_cli("run_generator.py", "--network", f"{server}/missing/x.pkl", "--seeds", "1",
                "--outdir", str(tmp_path / "out2"))
    assert r.returncode == 2 and "HTTP 404" in r.stderr and "Traceback" not in r.stderr
    ours = [line for line in r.stderr.splitlines() if not line.startswith(("WARNING: All log", "I0000", "E0000"))]
    assert len(ours) == 1 and ours[0].startswith("error: cannot download http://"), r.stderr     # TF's chatter aside
