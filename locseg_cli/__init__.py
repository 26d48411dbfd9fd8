"""locseg: location-aware 3D patch-based CT segmentation.

The package is organised by pipeline stage; each stage is a typed Python API
(`locseg_cli.<stage>`) that the `locseg` command line wraps thinly.
"""

__version__ = "0.1.0"
