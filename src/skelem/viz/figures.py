"""Pictures people would rather look at than read: orthoviews, curves, the fidelity-perception
plane.

All functions write a PNG (matplotlib, Agg backend) and return its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from skelem.atomic import atomic_path


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _display_range(volume: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(volume[:: max(1, volume.shape[0] // 16)], [0.5, 99.5])
    return float(lo), float(hi if hi > lo else lo + 1)


def orthoviews(
    volumes: Mapping[str, np.ndarray],
    path: str | Path,
    position: Sequence[int] | None = None,
    inset: int = 48,
    voxel_aspect: Mapping[str, float] | None = None,
) -> Path:
    """XY / XZ / YZ sections of several volumes side by side, with a zoomed inset of the XZ view.

    Parameters
    ----------
    volumes : mapping name -> array (Z, Y, X)
        Volumes on the same isotropic grid (an anisotropic input may be given on its own grid; pass
        its Z/X voxel ratio in ``voxel_aspect`` so it is drawn stretched to the same shape).
    path : str or Path
        The PNG to write.
    position : (z, y, x), optional
        Where the three planes cross (default: the centre of the first volume).
    inset : int
        Side of the zoomed square (voxels), taken at the centre of the XZ section.
    voxel_aspect : mapping name -> float, optional
        Z/X voxel ratio of volumes on their own (anisotropic) grid.

    Returns
    -------
    Path
        ``path``.
    """
    plt = _plt()
    names = list(volumes)
    ref = volumes[names[0]]
    z, y, x = position or tuple(n // 2 for n in ref.shape)
    lo, hi = _display_range(ref)
    rows = ["XY", "XZ", "YZ", f"XZ zoom {inset}px"]
    fig, axes = plt.subplots(len(rows), len(names), figsize=(2.6 * len(names), 2.5 * len(rows)),
                             squeeze=False)
    for j, name in enumerate(names):
        vol = volumes[name]
        aspect = (voxel_aspect or {}).get(name, 1.0)
        zi = int(round(z / aspect))
        zi = min(max(zi, 0), vol.shape[0] - 1)
        xz = vol[:, min(y, vol.shape[1] - 1), :]
        yz = vol[:, :, min(x, vol.shape[2] - 1)]
        zc, xc = int(round(z / aspect)), x
        h = max(1, int(round(inset / 2 / aspect)))
        zoom = xz[max(0, zc - h) : zc + h, max(0, xc - inset // 2) : xc + inset // 2]
        panels = ((vol[zi], 1.0), (xz, aspect), (yz, aspect), (zoom, aspect))
        for i, (img, asp) in enumerate(panels):
            ax = axes[i, j]
            ax.imshow(img, cmap="gray", vmin=lo, vmax=hi, aspect=asp, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if i == 0:
                ax.set_title(name, fontsize=10)
            if j == 0:
                ax.set_ylabel(rows[i], fontsize=9)
    fig.tight_layout()
    return _save(fig, path)


def curves(
    series: Mapping[str, tuple[np.ndarray, np.ndarray]],
    path: str | Path,
    xlabel: str,
    ylabel: str,
    title: str = "",
    hline: float | None = None,
    logy: bool = False,
) -> Path:
    """One line per method (e.g. FRC/FSC curves, Z power spectra).

    Parameters
    ----------
    series : mapping name -> (x, y)
        One curve per method.
    path : str or Path
        The PNG to write.
    xlabel, ylabel, title : str
        Axis labels and title.
    hline : float, optional
        A dotted threshold line (e.g. 1/7).
    logy : bool
        Logarithmic y axis.

    Returns
    -------
    Path
        ``path``.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for name, (xs, ys) in series.items():
        ax.plot(xs, ys, label=name, lw=1.5)
    if hline is not None:
        ax.axhline(hline, color="k", ls=":", lw=1, label=f"threshold {hline:.3g}")
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def fidelity_perception_plane(
    points: Mapping[str, tuple[float, float]],
    path: str | Path,
    xlabel: str = "perception distance (lower is better)",
    ylabel: str = "PSNR (dB, higher is better)",
    title: str = "",
    curve: Sequence[str] = (),
) -> Path:
    """One point per method: perception distance on x, fidelity on y (best is top-left).

    Parameters
    ----------
    points : mapping name -> (perception, fidelity)
        One point per method.
    path : str or Path
        The PNG to write.
    xlabel, ylabel, title : str
        Axis labels and title.
    curve : sequence of str
        Names of ``points`` joined by a line in this order (the settings of a knob).

    Returns
    -------
    Path
        ``path``.
    """
    plt = _plt()
    fig, ax = plt.subplots(figsize=(5.5, 4.2))
    line = [points[name] for name in curve if name in points]
    if len(line) > 1:
        ax.plot([p[0] for p in line], [p[1] for p in line], "-", color="0.6", lw=1, zorder=0)
    for name, (px, py) in points.items():
        ax.scatter([px], [py], s=40)
        ax.annotate(name, (px, py), textcoords="offset points", xytext=(5, 4), fontsize=8)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _save(fig, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=110, format="png")
    finally:
        _plt().close(fig)
    return path
