"""Segmentation scores (variation of information, adapted Rand error) and a membrane watershed.

The downstream test of the method: a membrane probability map (from a restored volume) is
turned into a label volume by :func:`membrane_watershed`, then compared with ground-truth labels.

Conventions
-----------
- Label volumes are integer arrays of any shape (``(Z, Y, X)`` typically), same shape for
  segmentation and ground truth. Labels need not be consecutive; negative labels are allowed.
- ``ignore_gt_zero=True`` (default, as in CREMI/SNEMI3D) leaves out every voxel whose
  ground-truth label is 0 (background or boundary). Segmentation label 0 is an ordinary label.
- Entropies are in **bits** (log base 2). CREMI reports natural-log VI: divide ours by
  ``log2(e) ≈ 1.4427`` to compare.
- The contingency table and the VI are scikit-image's (:mod:`skimage.metrics`); the ground-truth
  0 convention goes through its ``ignore_labels``. The adapted Rand error keeps the CREMI
  convention (see :func:`adapted_rand_error`).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy import ndimage, sparse
from skimage.feature import peak_local_max
from skimage.metrics import contingency_table
from skimage.metrics import variation_of_information as skimage_vi
from skimage.segmentation import watershed

from skelem.errors import InputError

from ._arrays import as_float_array


def _contingency(
    seg: np.ndarray, gt: np.ndarray, ignore_gt_zero: bool
) -> tuple[np.ndarray, np.ndarray, sparse.csr_matrix]:
    """Renumbered ``(gt, seg)`` labels (flat) and their voxel counts ``n_ij`` (sparse matrix).

    ``n_ij`` counts the voxels of ground-truth object i and segment j. Built by
    :func:`skimage.metrics.contingency_table` (rows: ground truth) on the labels renumbered
    ``1..n`` (so any integer labels, negative ones included, index the table), with
    ground-truth label 0 kept as index 0 and left out through its ``ignore_labels``.
    """
    seg = np.asarray(seg)
    gt = np.asarray(gt)
    if seg.shape != gt.shape:
        raise InputError(f"the segmentation {seg.shape} and the labels {gt.shape} differ in shape.")
    for name, labels in (("the segmentation", seg), ("the ground truth", gt)):
        if not (np.issubdtype(labels.dtype, np.integer) or labels.dtype == bool):
            raise InputError(f"{name} must hold integer labels, got dtype {labels.dtype}.")
    seg_flat, gt_flat = seg.ravel(), gt.ravel()
    if seg_flat.size == 0 or (ignore_gt_zero and not gt_flat.any()):
        raise InputError("no voxel is left to compare (the ground truth is all zero).")
    _, seg_index = np.unique(seg_flat, return_inverse=True)
    _, gt_index = np.unique(gt_flat, return_inverse=True)
    gt_index = gt_index.ravel() + 1
    gt_index[gt_flat == 0] = 0  # ground-truth 0 keeps its own index, whatever the other labels
    seg_index = seg_index.ravel()
    table = contingency_table(gt_index, seg_index, ignore_labels=(0,) if ignore_gt_zero else ())
    return gt_index, seg_index, table


def variation_of_information(
    seg: np.ndarray, gt: np.ndarray, ignore_gt_zero: bool = True
) -> tuple[float, float]:
    """Split and merge parts of the variation of information, in bits.

    Computed by :func:`skimage.metrics.variation_of_information`, whose entropies are already in
    bits (log base 2) and which returns ``(H(seg | gt), H(gt | seg))`` for ``(gt, seg)``.

    Parameters
    ----------
    seg : np.ndarray
        Segmentation labels (integers), any shape.
    gt : np.ndarray
        Ground-truth labels, same shape.
    ignore_gt_zero : bool
        Leave out the voxels where ``gt == 0`` (default True).

    Returns
    -------
    split : float
        ``H(seg | gt)`` in bits: over-segmentation (a ground-truth object cut in two equal
        halves adds 1 bit times its voxel fraction).
    merge : float
        ``H(gt | seg)`` in bits: under-segmentation. ``split + merge`` is the VI; both are 0
        for identical partitions (whatever the label values).
    """
    gt_index, seg_index, table = _contingency(seg, gt, ignore_gt_zero)
    split, merge = skimage_vi(gt_index, seg_index, table=table / table.sum())
    return max(float(split), 0.0), max(float(merge), 0.0)


def adapted_rand_error(seg: np.ndarray, gt: np.ndarray, ignore_gt_zero: bool = True) -> float:
    """Adapted Rand error (SNEMI3D/CREMI): 1 minus the F-score of Rand precision and recall.

    With ``n_ij`` the voxel counts of segment ``i`` and ground-truth object ``j``,
    ``a_j = Σ_i n_ij`` and ``b_i = Σ_j n_ij``: precision ``= Σ n_ij² / Σ b_i²``, recall
    ``= Σ n_ij² / Σ a_j²`` and the error is ``1 - 2PR / (P + R)``. Squared counts (pairs of
    voxels including a voxel with itself) follow the SNEMI3D/CREMI scripts; all segmentation
    labels, 0 included, are ordinary segments.

    The contingency table comes from :func:`skimage.metrics.contingency_table`, but the score
    is not :func:`skimage.metrics.adapted_rand_error`: that one leaves out the pairs of a voxel
    with itself (``Σ n_ij² - N``), which no parameter turns off, and gives e.g. 0.3342 instead
    of 1/3 for the two halves of an 8³ box.

    Parameters
    ----------
    seg, gt : np.ndarray
        Segmentation and ground-truth integer labels of the same shape.
    ignore_gt_zero : bool
        Leave out the voxels where ``gt == 0`` (default True).

    Returns
    -------
    float
        Error in [0, 1): 0 for identical partitions; a ground-truth object split into two equal
        halves (and nothing else) gives 1/3.
    """
    table = _contingency(seg, gt, ignore_gt_zero)[2]
    sum_joint = float(table.multiply(table).sum())
    gt_sizes = np.asarray(table.sum(axis=1)).ravel()
    seg_sizes = np.asarray(table.sum(axis=0)).ravel()
    precision = sum_joint / float(seg_sizes @ seg_sizes)
    recall = sum_joint / float(gt_sizes @ gt_sizes)
    return float(1.0 - 2.0 * precision * recall / (precision + recall))


def segmentation_scores(membrane_prob: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Watershed a membrane map and score the instances against ground-truth labels.

    The membrane map comes from the caller (e.g. the membrane predictor of
    :mod:`skelem.evaluation.membrane` applied to a restored volume), so this module needs no
    network.

    Parameters
    ----------
    membrane_prob : np.ndarray
        Membrane probability (0..1, high on membranes), ``(Z, Y, X)``.
    labels : np.ndarray
        Ground-truth instance labels of the same shape (label 0 is ignored).

    Returns
    -------
    dict of str to float
        ``vi_split``, ``vi_merge`` and ``vi`` (bits, see :func:`variation_of_information`) and
        ``adapted_rand`` (see :func:`adapted_rand_error`) of :func:`membrane_watershed`'s
        instances.
    """
    seg = membrane_watershed(membrane_prob)
    split, merge = variation_of_information(seg, labels)
    return {"vi_split": float(split), "vi_merge": float(merge), "vi": float(split + merge),
            "adapted_rand": float(adapted_rand_error(seg, labels))}


def _seeds(
    distance: np.ndarray,
    foreground: np.ndarray,
    method: str,
    min_seed_distance: float,
    sigma_seeds: float,
) -> np.ndarray:
    if method == "components":
        markers, _ = ndimage.label(distance >= min_seed_distance)
        return markers
    if method != "maxima":
        raise InputError(f"seed_method must be 'maxima' or 'components', got {method!r}.")
    smoothed = ndimage.gaussian_filter(distance, sigma_seeds) if sigma_seeds > 0 else distance
    regions, _ = ndimage.label(foreground)
    peaks = peak_local_max(
        smoothed,
        min_distance=max(int(round(min_seed_distance)), 1),
        labels=regions,
        exclude_border=False,
    )
    peak_mask = np.zeros(distance.shape, dtype=bool)
    peak_mask[tuple(peaks.T)] = True
    markers, _ = ndimage.label(peak_mask)  # plateau peaks that touch make one seed
    return markers


def membrane_watershed(
    membrane_prob: np.ndarray,
    threshold: float = 0.5,
    min_seed_distance: float = 2.0,
    min_size: int = 0,
    seed_method: Literal["maxima", "components"] = "maxima",
    alpha: float = 0.9,
    sigma_seeds: float = 1.0,
) -> np.ndarray:
    """Seeded 3-D watershed of a membrane probability map (distance-transform watershed).

    1. Non-membrane region: ``membrane_prob < threshold``; its Euclidean distance transform
       (distance to the nearest membrane voxel, in voxels).
    2. Seeds: ``"maxima"`` (default) local maxima of the distance transform smoothed with
       ``sigma_seeds``, at least ``min_seed_distance`` voxels apart, within each connected
       non-membrane component (touching maxima merged); or ``"components"`` the connected
       components of the region deeper than ``min_seed_distance`` voxels.
    3. Flooding of ``alpha * membrane_prob + (1 - alpha) * (1 - distance / max distance)``
       from the seeds over the whole volume (membranes included), so every voxel gets a label.
    4. Segments smaller than ``min_size`` voxels are dropped and the volume flooded again from
       the remaining ones (they are absorbed by their neighbours).

    Parameters
    ----------
    membrane_prob : np.ndarray
        Membrane probability (0..1, high on membranes), shape ``(Z, Y, X)`` (2-D works too).
    threshold : float
        Probability at and above which a voxel is membrane.
    min_seed_distance : float
        Voxels; see step 2.
    min_size : int
        Smallest segment kept, in voxels (0 keeps all).
    seed_method : {"maxima", "components"}
        How seeds are found.
    alpha : float
        Weight of the probability in the flooding height (0..1).
    sigma_seeds : float
        Gaussian smoothing (voxels) of the distance transform before finding maxima.

    Returns
    -------
    np.ndarray
        Labels ``1..n`` (int64) of the same shape; all zeros if there is no non-membrane voxel.
    """
    prob = as_float_array(membrane_prob, "the membrane probability map", ndims=(2, 3))
    if not 0.0 <= alpha <= 1.0:
        raise InputError(f"alpha must lie in [0, 1], got {alpha}.")
    foreground = prob < threshold
    if not foreground.any():
        return np.zeros(prob.shape, dtype=np.int64)
    distance = ndimage.distance_transform_edt(foreground)
    markers = _seeds(distance, foreground, seed_method, min_seed_distance, sigma_seeds)
    if markers.max() == 0:  # nothing deep enough: one seed per non-membrane component
        markers, _ = ndimage.label(foreground)
    height = alpha * prob + (1.0 - alpha) * (1.0 - distance / distance.max())
    labels = watershed(height, markers)
    if min_size > 0:
        sizes = np.bincount(labels.ravel())
        small = sizes < min_size
        small[0] = False
        if small.any() and not small[1:].all():
            labels[small[labels]] = 0
            labels = watershed(height, labels)
    _, relabelled = np.unique(labels, return_inverse=True)
    return relabelled.reshape(labels.shape).astype(np.int64) + 1


__all__ = [
    "adapted_rand_error",
    "membrane_watershed",
    "segmentation_scores",
    "variation_of_information",
]
