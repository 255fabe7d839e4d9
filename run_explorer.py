"""Explore a generator in the browser: a grid of seeds, truncation, noise, style mixing, edit directions and
interpolation with sliders, and the run_generator.py command for every image. A photo dropped on the page is
aligned to the network's framing and projected (progress shown as it goes), then edited with the same sliders.
CPU is enough.

    python run_explorer.py                                   # the newest snapshot under results/
    python run_explorer.py --network results/00000-faces --port 7860
    python run_explorer.py --network ffhq.pkl --host 0.0.0.0 # other machines too (no authentication: a warning)

This script only parses flags and starts the server; the server and the page live in `explorer/`.
"""
from __future__ import annotations

import os
import sys

sys.path[0] = os.path.dirname(os.path.abspath(__file__))

from absl import flags  # noqa: E402

from common.cli import cli_main, start_tensorflow  # noqa: E402
from common.errors import UserError  # noqa: E402

flags.DEFINE_string("network", None, "As run_generator.py: a .keras network, a training run folder, an official "
                    "NVIDIA .pkl or a parity-fixture folder. Default: the newest snapshot under results/, "
                    "else the face model that ships with the repo (utkface-64).")
flags.DEFINE_string("host", "127.0.0.1", "Address to serve on; anything but loopback is reachable by others.")
flags.DEFINE_integer("port", 7860, "Port (0: any free port).", lower_bound=0, upper_bound=65535)
flags.DEFINE_string("directions", None, "Folder of saved edit directions (run_generator.py --directions); "
                    "those made for this network get a slider. Default: the shipped model's own directions for "
                    "it, else directions/.")
flags.DEFINE_integer("sefa", 5, "SeFa directions offered (computed from the weights if directions/sefa.npy is "
                     "absent); 0: none.")
flags.DEFINE_integer("class", None, "Class index for conditional networks.", lower_bound=0)
flags.DEFINE_string("framing", None, "Uploaded photos: where the face goes, as run_generator.py --framing (ffhq, a "
                    "framing.json, or a folder of aligned faces). Default: the framing recorded with the network, "
                    "else NVIDIA's FFHQ framing.")
flags.DEFINE_boolean("verbose", False, "Log every request.")
FLAGS = flags.FLAGS


def main(argv: list[str]) -> int:
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]} (flags start with --)")
    if not 0 <= FLAGS.port <= 65535:
        raise UserError(f"--port {FLAGS.port} must be 0..65535")
    if not 0 <= FLAGS.sefa <= 64:
        raise UserError(f"--sefa {FLAGS.sefa} must be 0..64")
    import socket
    try:                                          # an address that cannot be served fails before any other line
        socket.getaddrinfo(FLAGS.host, FLAGS.port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise UserError(f"cannot serve on {FLAGS.host}:{FLAGS.port}: {getattr(exc, 'strerror', None) or exc}") from None
    from networks.locate import check_network_arg, directions_folder, encoder_file, find_network
    check_network_arg(FLAGS.network)
    if FLAGS.directions and not os.path.isdir(FLAGS.directions):
        raise UserError(f"--directions {FLAGS.directions} is not a folder (of direction files: <name>.npy, .json)")
    path = find_network(FLAGS.network)
    folder = directions_folder(FLAGS.network, FLAGS.directions)
    from explorer.server import host_warning
    start_tensorflow()
    from explorer.render import Renderer, find_directions
    from explorer.server import ExplorerServer
    from latent.directions import network_id
    from latent.seeds import class_vector
    from networks.serialize import load_network
    G = load_network(path).G_ema
    class_vector(G.c_dim, FLAGS["class"].value)
    net_id = network_id(path.name, G)
    found = find_directions(G, net_id, folder, FLAGS.sefa,
                            log=lambda m: print(m, file=sys.stderr, flush=True))
    photos, why_not = None, "projection into conditional networks is not supported"
    if not G.c_dim:
        from explorer.photos import Photos
        from latent.modes import target_framing
        framing, note = target_framing(FLAGS.network, FLAGS.framing)
        encoder = None
        found_encoder = encoder_file(FLAGS.network)
        if found_encoder is not None:                     # the projection starts from its guess
            from latent.encoder import load_encoder
            encoder = load_encoder(found_encoder, net_id, G.w_dim, G.num_ws)
        photos = Photos(lambda: load_network(path).G_ema, G.img_resolution, G.img_channels, framing, note,
                        log=lambda m: print(m, file=sys.stderr, flush=True), encoder=encoder)
    renderer = Renderer(G, str(path), net_id, found, str(folder), FLAGS["class"].value, photos=photos)
    renderer.no_photos_reason = why_not
    renderer.warm()                                     # trace the generator before the first visitor
    try:
        server = ExplorerServer(renderer, FLAGS.host, FLAGS.port, FLAGS.verbose)
    except OSError as exc:
        raise UserError(f"cannot serve on {FLAGS.host}:{FLAGS.port}: {exc.strerror}") from None
    warning = host_warning(FLAGS.host)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    print(f"explorer for {net_id} ({G.img_resolution}x{G.img_resolution}, {len(found)} directions) on {server.url} "
          "(Ctrl-C stops)", flush=True)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    cli_main(main)
