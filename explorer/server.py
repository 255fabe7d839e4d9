"""The explorer's HTTP server: Python's ThreadingHTTPServer (nothing to install) serving the page from memory
and a small JSON/PNG API. Every request carries the whole view in its query string, so clients never share
state; renders are serialised by the Renderer's lock.

    GET /                    the page (explorer/static/index.html, app.js, style.css, read once at start)
    GET /api/info            network, style groups, directions, limits
    GET /api/render.png?...  the image of a view (X-Render-Ms: milliseconds of rendering, 0 when cached);
                             &download=1 adds Content-Disposition: attachment
    GET /api/command?...     JSON {command, output, exact, note}: the run_generator.py line for the view
    POST /api/photo?steps=N&tune_steps=M  an uploaded photo (the body: the image file): its largest face is
                             aligned to the network's framing and queued for projection and tuning; 202
                             {photo: token, ...status}.
                             413 too large, 415 not an image, 422 no usable face, 503 no room
    GET /api/photo/events?photo=T     the projection's progress as server-sent events (one JSON per change)
    GET /api/photo/status?photo=T     the same, once
    GET /api/photo/aligned.png?photo=T, /api/photo/frame.png?photo=T (the projection's latest image),
        /api/photo/projected_w.npz?photo=T and /api/photo/tuned.keras?photo=T (its tuned network; both in one
        folder for run_generator.py --projected-w)
A view with photo=T starts from that photo's projected latent (render.png, command).
"""
from __future__ import annotations

import io
import json
import socket
import sys
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
from PIL import Image

from explorer.photos import DEFAULT_STEPS, DEFAULT_TUNE_STEPS, MAX_UPLOAD, STEPS_RANGE, TUNE_STEPS_RANGE, UploadError
from explorer.render import Renderer
from explorer.state import FRAMES, PHOTO_TOKEN, PSI_RANGE, SEED_MAX, STRENGTH_MAX, BadRequest, parse_state
from latent.projector import projection_arrays

STATIC = Path(__file__).resolve().parent / "static"
PAGES = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
         "/style.css": ("style.css", "text/css; charset=utf-8")}
MAX_URL = 4096          # longer request targets get 414
MAX_BODY = 0            # the API takes no request bodies (but a photo upload's): any is 413
DRAIN = 4 * MAX_UPLOAD  # an upload up to this size is read to its end before a 413, so browsers see the answer
EVENTS_SECONDS = 600    # an event stream ends after this long (the page reconnects if it still waits)
SAFELISTED = ("text/plain", "multipart/form-data", "application/x-www-form-urlencoded")   # no CORS preflight
LOOPBACK = ("127.0.0.1", "localhost", "::1")
CSP = "default-src 'self'; img-src 'self' blob: data:; style-src 'self'; script-src 'self'; base-uri 'none'"


def load_pages() -> dict[str, tuple[bytes, str]]:
    """The static files, read once: the server reads no other file while it runs."""
    return {route: ((STATIC / name).read_bytes(), ctype) for route, (name, ctype) in PAGES.items()}


def host_warning(host: str) -> str | None:
    """A warning for a bind address other than loopback (the explorer has no authentication)."""
    if host in LOOPBACK:
        return None
    return (f"warning: serving on {host}, not loopback: anyone who can reach this machine on that address can use "
            "the explorer and its CPU (there is no authentication)")


def host_name(header: str) -> str:
    """The host part of a Host header: 'localhost:7860' -> 'localhost', '[::1]:7860' -> '::1'."""
    if header.startswith("["):
        return header[1:].split("]", 1)[0]
    return header.rsplit(":", 1)[0] if header.count(":") == 1 else header


class Handler(BaseHTTPRequestHandler):
    """One request; the renderer and pages come from the server object."""

    server: "ExplorerServer"
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True      # headers and body go out at once (no 40 ms delayed-ACK stall)
    timeout = 30                        # seconds a client may take to send its request
    server_version = "stylegan2-explorer"
    sys_version = ""

    def log_message(self, format: str, *args) -> None:   # noqa: A002 - the base class's signature
        if self.server.verbose:
            super().log_message(format, *args)

    def log_line(self, text: str) -> None:
        """One line on the server's log (stderr) about this request."""
        print(f"explorer: {text}", file=sys.stderr, flush=True)

    def send_bytes(self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("Cache-Control", "no-store" if status >= 400 else "private, max-age=3600")
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def fail(self, status: int, message: str) -> None:
        self.close_connection = True
        self.send_bytes(status, (json.dumps({"error": message}) + "\n").encode(), "application/json")

    def send_json(self, obj: dict) -> None:
        self.send_bytes(200, (json.dumps(obj) + "\n").encode(), "application/json")

    def refuse_body(self) -> bool:
        """413 for a request with a body (the API takes none); True if refused."""
        length = self.headers.get("Content-Length", "0").strip() or "0"
        if self.headers.get("Transfer-Encoding") or not (length.isascii() and length.isdigit()) or \
                int(length) > MAX_BODY:
            self.fail(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, "request bodies are not accepted")
            return True
        return False

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.handle_errors(self.route)

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        if urlsplit(self.path).path != "/api/photo":
            return self._not_allowed()
        self.handle_errors(self.upload)

    def handle_errors(self, route) -> None:
        try:
            route()
        except BadRequest as exc:
            self.fail(exc.status, str(exc))
        except UploadError as exc:
            self.fail(exc.status, str(exc))
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True
            self.log_line(f"{self.client_address[0]} went away during {self.command} {urlsplit(self.path).path}")
        except Exception as exc:                    # a bug: report it, keep serving
            print(f"explorer: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
            self.fail(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error (see the server's log)")

    do_HEAD = do_GET

    def _not_allowed(self) -> None:
        self.close_connection = True
        if urlsplit(self.path).path == "/api/photo":
            return self.send_bytes(HTTPStatus.METHOD_NOT_ALLOWED, b'{"error": "only POST"}\n', "application/json",
                                   {"Allow": "POST"})
        self.send_bytes(HTTPStatus.METHOD_NOT_ALLOWED, b'{"error": "only GET and HEAD"}\n', "application/json",
                        {"Allow": "GET, HEAD"})

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _not_allowed

    def refuse_host(self) -> bool:
        """421 for a Host other than loopback on a loopback server (DNS rebinding); True if refused."""
        if self.server.loopback_only and host_name(self.headers.get("Host") or "") not in LOOPBACK:
            self.fail(HTTPStatus.MISDIRECTED_REQUEST, "this server answers only to 127.0.0.1 / localhost")
            return True
        return False

    def route(self) -> None:
        if len(self.path) > MAX_URL:
            return self.fail(HTTPStatus.REQUEST_URI_TOO_LONG, f"request target longer than {MAX_URL} bytes")
        if self.refuse_body() or self.refuse_host():
            return None
        url = urlsplit(self.path)
        if url.path == "/api/photo":
            return self._not_allowed()
        if url.path.startswith("/api/photo/"):
            return self.photo_route(url.path, self.params(url.query))
        if url.path in self.server.pages:
            body, ctype = self.server.pages[url.path]
            return self.send_bytes(200, body, ctype)
        if url.path == "/api/info":
            return self.send_json(self.server.info)
        if url.path in ("/api/render.png", "/api/command"):
            params = self.params(url.query)
            download = params.pop("download", None) == "1"
            state = parse_state(params, self.server.renderer.directions.keys(), self.server.renderer.groups)
            if url.path == "/api/command":
                c = self.server.renderer.command(state)
                return self.send_json({"command": c.command, "output": c.output, "exact": c.exact, "note": c.note,
                                       "query": state.query()})
            png, ms, cached = self.server.renderer.png(state)
            headers = {"X-Render-Ms": f"{ms:.1f}", "X-Cache": "hit" if cached else "miss"}
            if state.noise == "random":
                headers["Cache-Control"] = "no-store"
            if download:
                name = "photo" if state.photo else f"seed{state.seed:04d}"
                headers["Content-Disposition"] = f'attachment; filename="{name}-explorer.png"'
            return self.send_bytes(200, png, "image/png", headers)
        return self.fail(HTTPStatus.NOT_FOUND, "not found")

    # ------------------------------------------------------------------------------------------------ photos
    def upload(self) -> None:
        """POST /api/photo: read the body (at most MAX_UPLOAD bytes), align, queue; 202 with the token. A refusal
        that comes before the body is read still reads it (up to DRAIN bytes): a browser that is still sending
        would otherwise see a reset connection instead of the answer."""
        length = (self.headers.get("Content-Length") or "").strip()
        if self.headers.get("Transfer-Encoding") or not (length.isascii() and length.isdigit()):
            self.close_connection = True
            return self.fail(HTTPStatus.LENGTH_REQUIRED, "send the photo with a Content-Length")
        length = int(length)
        photos = self.server.renderer.photos
        admission = None
        try:
            steps, tune_steps = self.upload_steps(length)
            admission = photos.admit()                   # admitted before the body is read and decoded
            admission.__enter__()
        except (UploadError, BadRequest):
            if length <= DRAIN:
                self.drain(length)
            self.close_connection = True
            raise
        try:
            data = self.rfile.read(length)
            if len(data) != length:
                return self.fail(HTTPStatus.BAD_REQUEST, "the upload ended early")
            photo = photos.add(data, steps, tune_steps)
        finally:
            admission.__exit__(None, None, None)
        body = {"photo": photo.token, **photo.status()}
        self.send_bytes(HTTPStatus.ACCEPTED, (json.dumps(body) + "\n").encode(), "application/json",
                        {"Cache-Control": "no-store"})

    def upload_steps(self, length: int) -> tuple[int, int]:
        """The projection and tuning steps an upload asks for, after every check that needs no body (UploadError
        if not)."""
        if len(self.path) > MAX_URL:
            raise UploadError(HTTPStatus.REQUEST_URI_TOO_LONG, f"request target longer than {MAX_URL} bytes")
        if self.server.loopback_only and host_name(self.headers.get("Host") or "") not in LOOPBACK:
            raise UploadError(HTTPStatus.MISDIRECTED_REQUEST, "this server answers only to 127.0.0.1 / localhost")
        if self.server.renderer.photos is None:
            raise UploadError(HTTPStatus.NOT_IMPLEMENTED, self.server.info["photos"]["why_not"])
        ctype = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if not ctype or ctype in SAFELISTED:     # a type other pages can send without asking (CORS) is refused
            raise UploadError(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "send the photo file itself as the body, with its "
                                                                 "image/* Content-Type")
        if length > MAX_UPLOAD:
            raise UploadError(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, f"the photo is {length / 2**20:.1f} MiB; at most "
                                                                   f"{MAX_UPLOAD >> 20} MiB are accepted")
        params = self.params(urlsplit(self.path).query)
        steps = params.pop("steps", str(DEFAULT_STEPS))
        tune_steps = params.pop("tune_steps", str(DEFAULT_TUNE_STEPS))
        if params:
            raise BadRequest(f"unknown parameter {next(iter(params))[:40]!r}")
        for name, value, (lo, hi) in (("steps", steps, STEPS_RANGE), ("tune_steps", tune_steps, TUNE_STEPS_RANGE)):
            if not (value.isascii() and value.isdigit()) or len(value) > 6:
                raise BadRequest(f"{name} must be a whole number {lo}..{hi}")
        return int(steps), int(tune_steps)

    def drain(self, length: int) -> None:
        while length > 0:
            chunk = self.rfile.read(min(length, 1 << 20))
            if not chunk:
                return
            length -= len(chunk)

    def photo_route(self, path: str, params: dict[str, str]) -> None:
        token = params.pop("photo", "")
        params.pop("v", None)                           # the page's cache-buster for frame.png
        if params:
            raise BadRequest(f"unknown parameter {next(iter(params))[:40]!r}")
        if not PHOTO_TOKEN.match(token):
            raise BadRequest("photo must be the token the upload returned")
        photos = self.server.renderer.photos
        if photos is None:
            raise BadRequest("this server takes no photos", 404)
        photo = photos.require(token)
        private = {"Cache-Control": "no-store"}
        if path == "/api/photo/status":
            return self.send_bytes(200, (json.dumps(photo.status()) + "\n").encode(), "application/json", private)
        if path == "/api/photo/events":
            return self.events(photo)
        if path in ("/api/photo/aligned.png", "/api/photo/frame.png"):
            img = photo.aligned if path.endswith("aligned.png") else photo.frame
            if img is None:
                raise BadRequest("no image of the projection yet", 409)
            buf = io.BytesIO()
            Image.fromarray(img[:, :, 0] if img.shape[2] == 1 else img).save(buf, format="PNG", compress_level=1)
            return self.send_bytes(200, buf.getvalue(), "image/png", private)
        if path == "/api/photo/projected_w.npz":
            if photo.w is None:
                raise BadRequest(f"the photo is not projected yet ({photo.state})", 409)
            buf = io.BytesIO()
            extra = dict(network=self.server.renderer.net_id, tuned="tuned.keras") if photo.tuned is not None else {}
            np.savez(buf, **projection_arrays(photo.w, photo.noise, "pixel", photo.steps, False), **extra)
            return self.send_bytes(200, buf.getvalue(), "application/octet-stream",
                                   {**private, "Content-Disposition": 'attachment; filename="projected_w.npz"'})
        if path == "/api/photo/tuned.keras":
            if photo.w is None or photo.tuned is None:
                raise BadRequest(f"the photo has no tuned network ({photo.state})", 409)
            return self.send_bytes(200, self.server.renderer.tuned_network(photo), "application/octet-stream",
                                   {**private, "Content-Disposition": 'attachment; filename="tuned.keras"'})
        return self.fail(HTTPStatus.NOT_FOUND, "not found")

    def events(self, photo) -> None:
        """Server-sent events: the photo's status now and after every change, until it is done or failed."""
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.end_headers()
        if self.command == "HEAD":
            return
        photos = self.server.renderer.photos
        version, deadline = -1, time.monotonic() + EVENTS_SECONDS
        while time.monotonic() < deadline and not photos.closing:
            status = photos.wait(photo, version, timeout=15)
            try:
                if status["version"] == version:
                    self.wfile.write(b": waiting\n\n")       # a comment keeps the connection alive
                else:
                    version = status["version"]
                    self.wfile.write(f"data: {json.dumps(status)}\n\n".encode())
                self.wfile.flush()
            except OSError:                                 # the page went away (or stopped reading)
                return
            if status["state"] in ("done", "failed"):
                return

    @staticmethod
    def params(query: str) -> dict[str, str]:
        try:
            parsed = parse_qs(query, keep_blank_values=True, strict_parsing=False, max_num_fields=64,
                              errors="strict")
        except UnicodeDecodeError:
            raise BadRequest("bad query string: not UTF-8") from None
        except ValueError:                              # max_num_fields
            raise BadRequest("too many parameters (at most 64)") from None
        repeated = [k for k, v in parsed.items() if len(v) > 1]
        if repeated:
            raise BadRequest(f"parameter {repeated[0][:40]!r} given more than once")
        return {k: v[0] for k, v in parsed.items()}


class ExplorerServer(ThreadingHTTPServer):
    """The explorer's server; `serve_forever()` (or `start()` for a background thread) serves it."""

    daemon_threads = True
    request_queue_size = 64

    def __init__(self, renderer: Renderer, host: str = "127.0.0.1", port: int = 7860, verbose: bool = False) -> None:
        self.renderer, self.verbose = renderer, verbose
        self.loopback_only = host in LOOPBACK
        self.pages = load_pages()
        self.info = {**renderer.info(), "limits": {"seed_max": SEED_MAX, "psi": list(PSI_RANGE),
                                                   "strength_max": STRENGTH_MAX, "frames": FRAMES}}
        photos = renderer.photos
        self.info["photos"] = ({"available": True, "max_bytes": MAX_UPLOAD, "steps": [*STEPS_RANGE, DEFAULT_STEPS],
                                "tune_steps": [*TUNE_STEPS_RANGE, DEFAULT_TUNE_STEPS],
                                "framing": photos.framing_note} if photos is not None else
                               {"available": False, "why_not": renderer.no_photos_reason})
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__((host, port), Handler)

    def handle_error(self, request, client_address) -> None:
        """One line for what escaped a handler (socketserver prints a traceback): a client that left while its
        answer was being written, or a bug."""
        exc = sys.exc_info()[1]
        if isinstance(exc, (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, TimeoutError)):
            print(f"explorer: {client_address[0]} went away ({type(exc).__name__})", file=sys.stderr, flush=True)
        else:
            print(f"explorer: {type(exc).__name__}: {exc} (a request from {client_address[0]})", file=sys.stderr,
                  flush=True)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{'[' + host + ']' if ':' in host else host}:{port}/"

    def server_close(self) -> None:
        if self.renderer.photos is not None:
            self.renderer.photos.close()                # a projection in progress stops at its next step
        super().server_close()

    def start(self) -> threading.Thread:
        """Serve in a daemon thread (tests, notebooks); `shutdown()` stops it."""
        thread = threading.Thread(target=self.serve_forever, name="explorer", daemon=True)
        thread.start()
        return thread
