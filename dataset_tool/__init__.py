"""Turn folders or archives of face photos into multi-resolution TFRecords (the official StyleGAN layout):
`build` (the pipeline), `sources`, `images`, `labels`, `align`, `verify`; `create.py` and `extract.py` are
the command-line entry points.

Depends on `common` and `datasets` (the layout it writes and reads back to verify).
"""

__version__ = "0.1.0"
