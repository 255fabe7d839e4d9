"""Image-quality metrics (FID and friends) computed with the standard feature networks."""
