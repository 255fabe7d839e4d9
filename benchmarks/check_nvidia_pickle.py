"""Check kept apart from the suite: `run_generator.py --export net.pkl` read by NVIDIA's own loader.

For each network (the two parity fixtures and the shipped model by default) it exports the pickle, loads it in a
separate Python that has torch with stylegan2-ada-pytorch's `legacy.load_network_pkl` (the repository is not ours
and is not installed here: give its checkout), draws seeds 0, 1, 5 with psi 0.7 and constant noise from G_ema,
scores them with D, and compares both with our networks. The project itself never needs torch.

    python benchmarks/check_nvidia_pickle.py --torch_python /path/venv/bin/python \\
        --nvidia_repo /path/stylegan2-ada-pytorch [--networks utkface-64,tests/fixtures/...]
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from absl import app, flags

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

flags.DEFINE_string("torch_python", None, "A Python interpreter with torch (and numpy, click, pillow).", required=True)
flags.DEFINE_string("nvidia_repo", None, "A checkout of NVlabs/stylegan2-ada-pytorch.", required=True)
flags.DEFINE_list("networks", ["tests/fixtures/stylegan2-parity/uncond-32", "tests/fixtures/stylegan2-parity/cond-16",
                               "utkface-64"], "Networks to export and check.")
FLAGS = flags.FLAGS

SEEDS, PSI = [0, 1, 5], 0.7

# Runs under --torch_python: NVIDIA's loader, G_ema at constant noise, D on those images.
NVIDIA_SIDE = """
import json, sys, numpy as np, torch
sys.path.insert(0, sys.argv[1])
import legacy
with open(sys.argv[2], 'rb') as f:
    data = legacy.load_network_pkl(f)
G_ema, D = data['G_ema'], data['D']
z = torch.from_numpy(np.load(sys.argv[3]))
c = torch.from_numpy(np.load(sys.argv[4]))
with torch.no_grad():
    img = G_ema(z, c, truncation_psi=float(sys.argv[6]), noise_mode='const')
    logits = D(img, c)
np.savez(sys.argv[5], img=img.numpy(), logits=logits.numpy())
print(json.dumps({'G': type(data['G']).__name__, 'G_ema_init_kwargs': G_ema.init_kwargs, 'torch': torch.__version__}))
"""


def main(argv) -> int:
    import numpy as np
    from latent.seeds import seed_to_z
    from networks.export import export_nvidia_pickle
    from networks.ops import to_uint8
    from networks.serialize import load_network
    worst = 0
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        (tmp / "side.py").write_text(NVIDIA_SIDE)
        for name in FLAGS.networks:
            bundle = load_network(name if not (ROOT / name).exists() else ROOT / name)
            G, D = bundle.G_ema, bundle.D
            pkl = tmp / "net.pkl"
            size, notes = export_nvidia_pickle(G, D, pkl, bundle.G)
            z = np.concatenate([seed_to_z(s, G.z_dim) for s in SEEDS])
            c = np.zeros([len(SEEDS), G.c_dim], np.float32)
            if G.c_dim:
                c[np.arange(len(SEEDS)), np.arange(len(SEEDS)) % G.c_dim] = 1
            np.save(tmp / "z.npy", z)
            np.save(tmp / "c.npy", c)
            r = subprocess.run([FLAGS.torch_python, str(tmp / "side.py"), FLAGS.nvidia_repo, str(pkl),
                                str(tmp / "z.npy"), str(tmp / "c.npy"), str(tmp / "out.npz"), str(PSI)],
                               capture_output=True, text=True)
            if r.returncode != 0:
                print(f"{name}: NVIDIA's loader failed:\n{r.stderr[-3000:]}")
                return 1
            info = json.loads(r.stdout.strip().splitlines()[-1])
            ref = np.load(tmp / "out.npz")
            cc = c if G.c_dim else None
            ours = np.asarray(G(z, cc, truncation_psi=PSI, noise_mode="const"))          # [N, R, R, C]
            theirs = ref["img"].transpose(0, 2, 3, 1)
            levels = int(np.abs(to_uint8(ours).numpy().astype(int) - to_uint8(theirs).numpy().astype(int)).max())
            logits = float(np.abs(np.asarray(D(theirs, cc)) - ref["logits"]).max())
            worst = max(worst, levels)
            print(f"{name}: {size / 1e6:.1f} MB pickle; NVIDIA's loader built {info['G']} (torch {info['torch']}); "
                  f"images max |diff| {np.abs(ours - theirs).max():.2e} ({levels} uint8 levels), D logits max "
                  f"|diff| {logits:.2e}" + "".join(f"; {n}" for n in notes))
    print("PASS" if worst <= 1 else "FAIL")
    return 0 if worst <= 1 else 1


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
