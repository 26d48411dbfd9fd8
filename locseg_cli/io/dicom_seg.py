"""A label map on a DICOM series' grid, written as a DICOM Segmentation (highdicom), atomically.

Viewers and PACS open DICOM SEG beside the series it references; NIfTI they mostly do not. Each
class of the run becomes one segment named with the run's label name; the SEG references every
source slice, so it lands on the series' grid whatever its orientation.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

from .. import __version__
from ..errors import LocsegError
from .atomic import atomic_path
from .dicom import DICOM_EXTRA, DicomSeries, require_pydicom

SEG_SERIES_NUMBER = 900  # where viewers list it: after the usual acquisition series numbers


def write_dicom_seg(path: str | Path, labels: np.ndarray, series: DicomSeries, names: Mapping[int | str, str],
                    description: str = "locseg") -> None:
    """Write `labels` ((column, row, slice) on `series`' grid) as a binary DICOM SEG, one segment per class.

    `names` maps the label values to segment names (background 0 is not a segment; keys may be the
    strings of a manifest's label table, as `infer` and `postprocess` pass it); the segments are numbered
    1.. in label-value order, so a run's class subset with gaps in its values still works.
    Frames where a segment is absent are left out (highdicom's default), which keeps the file small.
    """
    pydicom = require_pydicom(series.folder)
    try:
        import highdicom as hd
        from pydicom.sr.codedict import codes
    except ImportError:
        raise LocsegError(f"writing DICOM SEG needs the optional DICOM dependencies: {DICOM_EXTRA}") from None
    if labels.shape != series.shape:
        raise ValueError(f"labels of shape {labels.shape} are not on the series' grid {series.shape}")
    names = {int(k): str(v) for k, v in names.items()}
    values = sorted(v for v in names if v != 0)
    # segment numbers 1..K in the frames, in slice order; frames are (row, column) as the sources' pixels
    lut = np.zeros(max([*values, int(labels.max())]) + 1, dtype=np.uint8)
    lut[values] = np.arange(1, len(values) + 1)
    frames = np.ascontiguousarray(lut[labels].transpose(2, 1, 0))
    sources = [pydicom.dcmread(p, stop_before_pixels=True) for p in series.files]
    algorithm = hd.AlgorithmIdentificationSequence(name="locseg", version=__version__,
                                                   family=codes.DCM.ArtificialIntelligence)
    segments = [hd.seg.SegmentDescription(segment_number=i + 1, segment_label=names[v][:64],
                                          segmented_property_category=codes.SCT.AnatomicalStructure,
                                          segmented_property_type=codes.SCT.AnatomicalStructure,
                                          algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                                          algorithm_identification=algorithm)
                for i, v in enumerate(values)]
    seg = hd.seg.Segmentation(
        source_images=sources, pixel_array=frames, segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=segments, series_instance_uid=hd.UID(), series_number=SEG_SERIES_NUMBER,
        sop_instance_uid=hd.UID(), instance_number=1, manufacturer="locseg", manufacturer_model_name="locseg",
        software_versions=__version__, device_serial_number="0", content_description=description[:64])
    with atomic_path(path) as tmp:
        seg.save_as(tmp)
