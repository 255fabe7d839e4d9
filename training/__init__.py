"""StyleGAN2 in TensorFlow 2 / Keras 3: networks, data pipeline and training."""
