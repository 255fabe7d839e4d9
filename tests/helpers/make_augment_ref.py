"""Reference outputs of StyleGAN2-ADA's own augmentation pipeline (NVlabs/stylegan2-ada-pytorch, commit d72cc7d,
`training/augment.py`, the 'bgc' set), for tests/test_augment.py. Its `debug_percentile` replaces every random
draw by that percentile of its distribution, so each output is a known transform that our pipeline can be given
too. Run once, outside the project's environment, from the repo root (torch only; CPU reference ops):

    python -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy
    /tmp/torchenv/bin/python tests/helpers/make_augment_ref.py PATH/TO/stylegan2-ada-pytorch \
        tests/fixtures/augment-ref.npz

It stores the inputs, the outputs at each percentile and the gradients of <output, cotangent> with respect to
the inputs; the suite never needs torch.
"""
import sys

import numpy as np
import torch

sys.path.insert(0, sys.argv[1])
from training.augment import AugmentPipe  # noqa: E402  (NVIDIA's)

BGC = dict(xflip=1, rotate90=1, xint=1, scale=1, rotate=1, aniso=1, xfrac=1, brightness=1, contrast=1,
           lumaflip=1, hue=1, saturation=1)
PERCENTILES = [0.1, 0.3, 0.6, 0.85]          # rotate90 0..3, both flips, no rounding ties in xint at 24x32

pipe = AugmentPipe(**BGC).eval()
pipe.p.copy_(torch.tensor(1.0))
rs = np.random.RandomState(0)
out = {"percentiles": np.asarray(PERCENTILES, np.float32), "torch_version": torch.__version__,
       "source": "NVlabs/stylegan2-ada-pytorch d72cc7d training/augment.py, bgc, debug_percentile, CPU"}
for name, shape in (("rgb", [2, 3, 24, 32]), ("grey", [1, 1, 24, 32])):
    x = rs.uniform(-1, 1, shape).astype(np.float32)                       # NCHW, as theirs
    cot = rs.normal(size=shape).astype(np.float32)
    out[name] = x.transpose(0, 2, 3, 1)                                     # stored NHWC, as ours
    out[name + "_cotangent"] = cot.transpose(0, 2, 3, 1)
    ys, gs = [], []
    for q in PERCENTILES:
        xt = torch.from_numpy(x).requires_grad_(True)
        y = pipe(xt, debug_percentile=q)
        (g,) = torch.autograd.grad((y * torch.from_numpy(cot)).sum(), [xt])
        ys.append(y.detach().numpy().transpose(0, 2, 3, 1))
        gs.append(g.numpy().transpose(0, 2, 3, 1))
    out[name + "_out"] = np.stack(ys)                                       # [Q, N, H, W, C]
    out[name + "_grad"] = np.stack(gs)
    print(name, out[name + "_out"].shape, float(np.abs(out[name + "_out"] - out[name][None]).mean()))
np.savez_compressed(sys.argv[2], **out)
