"""``report.md``: tables and pictures of a benchmark run."""

from __future__ import annotations

import math
from pathlib import Path

from skelem.atomic import write_text_atomic

COLUMNS = [
    ("psnr", "PSNR dB", "{:.2f}"),
    ("ssim", "SSIM", "{:.3f}"),
    ("gmsd", "GMSD", "{:.4f}"),
    ("kid", "KID", "{:.4f}"),
    ("log_spectral_distance", "Z-spectrum LSD", "{:.3f}"),
    ("hf_energy_ratio", "HF energy ratio", "{:.2f}"),
    ("frc_z_resolution_1_7", "FRC 1/7 (cyc/vox)", "{:.3f}"),
    ("self_fsc_z_resolution_1_7", "self-FSC Z 1/7", "{:.3f}"),
    ("measured_max_abs", "max err measured", "{:.2f}"),
    ("between_psnr", "PSNR between", "{:.2f}"),
    ("stripe_index", "XY stripe index", "{:.2f}"),
    ("stripe_excess", "XY stripe excess", "{:.2f}"),
    ("z_stationarity", "Z stationarity", "{:.2f}"),
    ("pass_disagreement", "XZ/YZ RMS diff", "{:.2f}"),
    ("vi", "VI", "{:.3f}"),
    ("adapted_rand", "ARand err", "{:.3f}"),
    ("seconds", "restore s", "{:.1f}"),
    ("time_ratio_to_skeleton", "time / skeleton", "{:.2f}"),
]


INTRO = """\
Each case simulates an anisotropic acquisition from an isotropic volume (keep every s-th slice),
trains every learned method on that anisotropic input only, and compares the restored volume
with the isotropic original (borders of 8 voxels excluded; data range stated per case).
Lower is better for GMSD, KID, Z-spectrum LSD (log-spectral distance of the Z power spectrum
to the reference's), VI and adapted Rand error; an HF energy ratio near 1 means the restored
volume has the reference's high-frequency energy along Z (below 1: too smooth). XY stripe index:
share of the XY error spectrum on the k_x = 0 / k_y = 0 lines relative to the share of bins
there (1 for a white error; a smooth error reads 3-5 without any stripe); XY stripe excess: the
same lines' energy against the off-axis energy at the same radial frequencies (1 = no stripes,
whatever the error's spectrum); XZ/YZ RMS diff: disagreement of the XZ-only and YZ-only passes
between measured slices (intensity units); Z stationarity: max/min over the phases z mod s
(phase 0 = acquired) of each XY slice's lateral gradient energy (the reference gives about 1;
bands of sharp measured slices between smooth restored ones give 2-3.5). Restore s: \
wall-clock seconds of the restoration, the fastest of up to three runs for the learned headline \
methods (one run for ablations and runs over a minute); time / skeleton: its ratio to the \
skeleton's."""

PRETRAINED_INTRO = [
    "Rows of group `pretrained` restore with the pretrained FIB-SEM model of the factor (the",
    "package's, or `$SKELEM_PRETRAINED_DIR`'s: its folder is `pretrained_model` in results.json),",
    "zero-shot: trained once on other isotropic FIB-SEM (see the model's PROVENANCE.md), not on",
    "this input; they are a fair comparison only on data that model never saw. As `skelem",
    "restore` without `--model`, they normalise intensities by the input's own percentiles and",
    "run the detail check first.",
]

PAIRED_INTRO = [
    "Paired cases skip the simulation: they restore a real anisotropic acquisition and compare it",
    "with a co-registered isotropic reference.",
]


def _fmt(value, pattern: str) -> str:
    if value is None:
        return "-"
    try:
        if isinstance(value, float) and math.isinf(value):
            return "inf"
        return pattern.format(value)
    except (TypeError, ValueError):
        return str(value)


def method_table(methods: dict) -> str:
    """A markdown table, one row per method, the columns present in the results.

    Parameters
    ----------
    methods : dict
        Scores by method name (a case's ``methods`` entry).

    Returns
    -------
    str
        The table in markdown, one line per row.
    """
    present = [c for c in COLUMNS if any(c[0] in row for row in methods.values())]
    head = "| method | group | " + " | ".join(c[1] for c in present) + " |"
    sep = "|---|---|" + "---:|" * len(present)
    lines = [head, sep]
    for name, row in methods.items():
        cells = [_fmt(row.get(key), pat) for key, _, pat in present]
        lines.append(f"| {name} | {row.get('group', '')} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def case_acquisition(case: dict) -> str:
    """How a case's input was acquired, as a sentence part of the report.

    Parameters
    ----------
    case : dict
        A case of ``results.json`` (``acquisition`` is ``"simulated"`` when absent).

    Returns
    -------
    str
        ``"Degradation: ..."`` for a simulated case, ``"Acquisition: paired, ..."`` for a real one.
    """
    if case.get("acquisition") == "paired":
        return "Acquisition: paired, a real anisotropic acquisition (no simulated degradation)"
    return f"Degradation: {case['degradation']}"


def _reference_stationarity(case: dict) -> str:
    values = [row.get("z_stationarity_reference") for row in case["methods"].values()]
    values = [v for v in values if v is not None]
    return f" Z stationarity of the reference: {values[0]:.2f}." if values else ""


def write_report(report_dir: Path, meta: dict, cases: list[dict]) -> Path:
    """Write ``report.md`` (atomically) and return its path.

    Parameters
    ----------
    report_dir : Path
        The report folder (figure paths in ``cases`` are relative to it).
    meta : dict
        ``started``, ``finished``, ``machine`` and ``budget`` of the run.
    cases : list of dict
        Results of :func:`skelem.evaluation.benchmark.run_case`.

    Returns
    -------
    Path
        ``report_dir / "report.md"``.
    """
    paired = any(case.get("acquisition") == "paired" for case in cases)
    pretrained = any(case.get("pretrained_model") for case in cases)
    out = [
        "# SkelEM benchmark report",
        "",
        f"Run {meta['started']} - {meta['finished']} on {meta['machine']}.",
        f"Budgets: {meta['budget']}.",
        "",
        *INTRO.splitlines(),
        *(PAIRED_INTRO if paired else []),
        *(PRETRAINED_INTRO if pretrained else []),
        "",
    ]
    for case in cases:
        tag = f"{case['dataset']} x{case['factor']}"
        heading = f"{tag} (paired acquisition)" if case.get("acquisition") == "paired" else tag
        out += [
            f"## {heading}",
            "",
            f"{case_acquisition(case)}; ground truth: {case['ground_truth']}; evaluated shape "
            f"{case['eval_shape']} (Z, Y, X), data range {case['data_range']:g}. Training time "
            f"per stage (s): {case['training_seconds']}."
            + _reference_stationarity(case),
            "",
            method_table(case["methods"]),
            "",
        ]
        figs = case.get("figures", {})
        for key, caption in (("orthoviews", "XY / XZ / YZ views with a zoomed XZ inset"),
                             ("fidelity_perception", "Fidelity-perception plane"),
                             ("frc", "Fourier ring correlation with the reference along Z"),
                             ("z_spectrum", "Z power spectra")):
            if key in figs:
                out += [f"![{caption}]({figs[key]})", ""]
    return write_text_atomic(Path(report_dir) / "report.md", "\n".join(out))
