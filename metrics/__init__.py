"""Image-quality metrics (FID, KID, PPL, precision/recall) with the standard feature network: `metrics` (the
registry of names and protocols, result rows), `inception` (the FID Inception in TF), `stats` (streamed
mean/covariance, Frechet distance, KID).

Depends on `common`, `datasets`, `networks` and `latent`; nothing below imports it.
"""
