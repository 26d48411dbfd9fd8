"""Cross-validation folds exactly as nnU-Net v2 makes them (sklearn KFold, shuffle, seed 12345)."""

from __future__ import annotations

import numpy as np


def kfold_splits(case_ids: list[str], folds: int = 5, seed: int = 12345) -> list[dict[str, list[str]]]:
    """nnU-Net's `splits_final.json`: KFold(n_splits, shuffle=True, random_state=seed) on sorted ids.

    Reimplements sklearn's KFold (same permutation, same fold sizes) so the folds match nnU-Net's
    without depending on scikit-learn. With fewer cases than folds, one fold per case.
    """
    keys = sorted(case_ids)
    n = len(keys)
    k = min(folds, n)
    idx = np.arange(n)
    np.random.RandomState(seed).shuffle(idx)
    sizes = np.full(k, n // k, dtype=int)
    sizes[: n % k] += 1
    out, start = [], 0
    for size in sizes:
        test = idx[start:start + size]
        train = np.setdiff1d(np.arange(n), test)  # sorted, like sklearn's mask
        out.append({"train": [keys[i] for i in train], "val": [keys[i] for i in test]})
        start += size
    return out
