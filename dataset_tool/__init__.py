"""Turn folders or archives of face photos into multi-resolution TFRecords (the official StyleGAN layout)."""

__version__ = "0.1.0"
