"""Latent-space tools on top of a generator: seeds and sampling, style mixing, interpolation walks, edit
directions (SeFa, GANSpace, learned from labels; with their file format), projection of real faces (with
`projected_w.npz`), and `modes`: the functions behind each mode of run_generator.py.

Depends on `common`, `datasets` (attribute classifiers read labelled faces), `dataset_tool` (a photo to project
is aligned as `create.py --align` aligns) and `networks`, never on `training` or `metrics`.
"""
