"""The networks and their files: `stylegan2` (Generator, Discriminator with official weight names), `ops`
(FIR filters, modulated convolution, float -> uint8), `convert` (official state dicts <-> ours),
`serialize` (our .keras bundles, NVIDIA pickles, SavedModel export) and `legacy` (the restricted unpickler).

Depends only on `common`.
"""
