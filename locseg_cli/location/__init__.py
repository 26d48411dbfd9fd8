"""The location signal: one definition for sampling, inference and shift evaluation.

In the preprocessed (canonical, resampled, cropped) space each axis a has a 1D vector `loc_a`.
Default: `linspace(-0.5, 0.5, L_a)` over the volume; in `bpr` mode the axial vector is the
(score - 50) / 100 of each slice. A patch's location is the slice of these vectors at its position,
extended linearly past the volume's ends, broadcast into three channels aligned with the image axes.
Training batches carry the unbroadcast slices (D + H + W values per patch); the channels are made
on the device where a model needs them.
An axial shift of s% adds s/100 to the axial channel only.
"""

from .vectors import (
    apply_shift,
    axial_from_scores,
    channels_from_patch_vectors,
    location_channels,
    location_vectors,
    patch_location_into,
    patch_location_vectors,
    slice_location,
    volume_location_channels,
)

__all__ = ["location_vectors", "axial_from_scores", "slice_location", "location_channels",
           "volume_location_channels", "apply_shift", "patch_location_into", "patch_location_vectors",
           "channels_from_patch_vectors"]
