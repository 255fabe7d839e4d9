"""The dataset on disk: `format` (the official multi-resolution TFRecord layout, our manifest, discovery)
and `reader` (the tf.data pipeline, per-worker sharding, resume by skipping).

Depends only on `common`; the writer (dataset_tool), training, latent tools and metrics read through it.
"""
