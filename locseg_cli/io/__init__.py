"""Files on disk: atomic writes, stage manifests, NIfTI volumes in canonical orientation."""
