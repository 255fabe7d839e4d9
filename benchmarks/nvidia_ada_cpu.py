"""Make a checkout of NVIDIA's stylegan2-ada-pytorch train on the CPU, for side-by-side runs with ours.

    git clone https://github.com/NVlabs/stylegan2-ada-pytorch sg2ada     # commit d72cc7d, in a scratch folder
    python benchmarks/nvidia_ada_cpu.py sg2ada
    python -m venv torchenv && torchenv/bin/pip install torch==2.13.0 click requests pillow scipy psutil numpy
    SG2ADA_CMAX=64 SG2ADA_EMA=5 SG2ADA_ADA_KIMG=100 OMP_NUM_THREADS=1 torchenv/bin/python sg2ada/train.py \\
        --outdir runs --data faces-png/ --gpus 1 --cfg auto --batch 16 --gamma 0.0128 --mirror 1 --kimg 100 \\
        --snap 5 --seed 0 --fp32 1 --workers 1 --metrics none --aug ada

Edits the checkout in place (idempotent; nothing of NVIDIA's is kept in this repository):
- the device is the CPU (their loop hard-codes CUDA), without CUDA events, memory statistics or pinned memory;
- `InfiniteSampler` calls `Sampler.__init__()` without the dataset (newer PyTorch takes no argument);
- three settings their command line does not expose, from the environment: `SG2ADA_CMAX` (channel_max,
  default 512), `SG2ADA_EMA` (G_ema half-life in kimg, default their `auto` value) and `SG2ADA_ADA_KIMG`
  (ADA's speed, default 500), so the network and ADA match `run_training.py --cmax 64 --cfg small --ada-kimg 100`;
- the warning that `grid_sample_gradfix` falls back to PyTorch's grid_sample is printed once, not every step.
Their reference ops (upfirdn2d, bias_act) already run on the CPU. OMP_NUM_THREADS=1 when another training
shares the cores: PyTorch's spinning OpenMP threads otherwise slow it by an order of magnitude.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

EDITS = {
    "training/training_loop.py": [
        ("device = torch.device('cuda', rank)", "device = torch.device('cpu')  # CPU edit"),
        ("phase.start_event = torch.cuda.Event(enable_timing=True)", "phase.start_event = None"),
        ("phase.end_event = torch.cuda.Event(enable_timing=True)", "phase.end_event = None"),
        ("torch.cuda.max_memory_allocated(device) / 2**30", "0.0"),
        ("        torch.cuda.reset_peak_memory_stats()\n", ""),
        (".pin_memory().to(device)", ".to(device)"),
    ],
    "torch_utils/misc.py": [
        ("        super().__init__(dataset)", "        super().__init__()"),
    ],
    "train.py": [
        ("pin_memory=True, num_workers=3", "pin_memory=False, num_workers=3"),
        ("args.D_kwargs.channel_max = 512", "args.D_kwargs.channel_max = int(os.environ.get('SG2ADA_CMAX', 512))"),
        ("args.ema_kimg = spec.ema", "args.ema_kimg = float(os.environ.get('SG2ADA_EMA', spec.ema))"),
        ("        args.ada_target = 0.6\n",
         "        args.ada_target = 0.6\n        args.ada_kimg = float(os.environ.get('SG2ADA_ADA_KIMG', 500))\n"),
        ("import torch\nimport dnnlib",
         "import torch\nimport warnings; warnings.filterwarnings('ignore', message='grid_sample_gradfix')\n"
         "import dnnlib"),
    ],
}


def patch(root: Path) -> list[str]:
    """Apply EDITS to the checkout at `root`; returns what was changed (empty when already applied)."""
    done = []
    for rel, edits in EDITS.items():
        path = root / rel
        if not path.is_file():
            raise SystemExit(f"error: {path} not found: is {root} a stylegan2-ada-pytorch checkout?")
        text = path.read_text()
        for old, new in edits:
            if old in new and new in text:                 # an insertion after `old`, applied before
                continue
            if old in text:
                text = text.replace(old, new)
                done.append(f"{rel}: {old.strip().splitlines()[0][:60]}")
            elif new and new not in text:
                raise SystemExit(f"error: {rel}: expected text not found ({old.strip()[:60]!r}): another commit?")
        path.write_text(text)
    return done


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("checkout", type=Path, help="a stylegan2-ada-pytorch checkout (edited in place)")
    changed = patch(ap.parse_args().checkout)
    print("\n".join(changed) if changed else "already applied")
    return 0


if __name__ == "__main__":
    sys.exit(main())
