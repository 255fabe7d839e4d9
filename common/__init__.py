"""The shared base of every package: one-line errors, command-line start-up, progress bars, atomic files,
image grids and image/video encoding.

Imports nothing else of this project and no TensorFlow, so worker processes and `--help` stay light.
"""
