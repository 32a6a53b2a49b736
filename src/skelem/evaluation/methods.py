"""The methods a benchmark compares, as restore options (the trilemma in one tool)."""

from __future__ import annotations

from dataclasses import dataclass

from skelem.config.restore import RestoreOptions
from skelem.models.pretrained import PRETRAINED_NORMALIZE


@dataclass(frozen=True)
class MethodSpec:
    """One restoration setting of a benchmark.

    ``group`` is ``baseline`` (interpolation), ``peer`` (skeleton = regression peer, diffusion =
    pure-diffusion peer), ``skelem``, ``pretrained``, ``ablation`` or ``knob``. ``restore`` holds
    the setting's restore options. ``crossplane``: also restore the XZ and YZ passes separately to
    measure their disagreement (costs one more restoration). ``pretrained``: restore with the
    shipped pretrained model of the case's factor, zero-shot, instead of the model trained on the
    case's input.
    """

    name: str
    group: str
    restore: RestoreOptions
    crossplane: bool = False
    pretrained: bool = False

    @property
    def method(self) -> str:
        """The restore method's name."""
        return self.restore.method

    def options(self, seed: int = 0, planes: str = "both") -> RestoreOptions:
        """The restore options with the benchmark's ``seed`` and the cross-planes to restore.

        Parameters
        ----------
        seed : int
            Noise seed.
        planes : {"both", "xz", "yz"}
            Cross-planes to restore.

        Returns
        -------
        RestoreOptions
        """
        return self.restore.model_copy(update={"seed": seed, "planes": planes})


def _spec(
    name: str, method: str, group: str, crossplane: bool = False, **restore: object
) -> MethodSpec:
    return MethodSpec(name, group, RestoreOptions(method=method, **restore), crossplane)


def benchmark_methods(
    ablations: bool = True,
    step_sweep: tuple[int, ...] = (1, 5),
    t0_sweep: tuple[int, ...] = (200,),
    knob_sweep: tuple[float, ...] = (0.0, 0.25, 0.5, 1.0),
    pretrained: bool = False,
) -> list[MethodSpec]:
    """Interpolation baselines, the two peers, SkelEM, the pretrained model's skeleton and SkelEM
    when asked, then SkelEM's ablations, the step and ``t0`` sweeps and the fidelity-perception
    knob (``--detail``).

    Parameters
    ----------
    ablations : bool
        Also the ablations and sweeps.
    step_sweep, t0_sweep : tuple of int
        The step counts and start timesteps of the sweeps.
    knob_sweep : tuple of float
        ``--detail`` settings of the fidelity-perception knob (0: fidelity end, 1: perception).
    pretrained : bool
        Also ``skeleton-pretrained`` and ``skelem-pretrained`` (group ``pretrained``): the
        shipped pretrained model, zero-shot.

    Returns
    -------
    list of MethodSpec
    """
    methods = [
        _spec("nearest", "nearest", "baseline"),
        _spec("linear", "linear", "baseline"),
        _spec("cubic", "cubic", "baseline"),
        _spec("skeleton", "skeleton", "peer", crossplane=ablations),
        _spec("diffusion-50", "diffusion", "peer"),
        _spec("skelem", "skelem", "skelem", crossplane=ablations),
    ]
    if pretrained:
        methods += [
            MethodSpec(
                f"{method}-pretrained",
                "pretrained",
                RestoreOptions(method=method, normalize=PRETRAINED_NORMALIZE),
                crossplane=ablations,
                pretrained=True,
            )
            for method in ("skeleton", "skelem")
        ]
    if ablations:
        methods += [
            _spec("skelem-no-prior", "skelem", "ablation", use_prior=False),
            _spec("skelem-no-consistency", "skelem", "ablation", use_consistency=False),
            _spec("skelem-no-alignment", "skelem", "ablation", aligned=False, crossplane=True),
            _spec(
                "skelem-no-alignment-no-prior", "skelem", "ablation", aligned=False, use_prior=False
            ),
            _spec("skelem-fuse-steps", "skelem", "ablation", fuse="steps"),
        ]
        methods += [_spec(f"skelem-{k}-steps", "skelem", "ablation", steps=k) for k in step_sweep]
        methods += [_spec(f"skelem-t0-{t}", "skelem", "ablation", t0=t) for t in t0_sweep]
        methods += [_spec(f"skelem-detail-{d:g}", "skelem", "knob", detail=d) for d in knob_sweep]
        methods.append(_spec("skeleton-tta", "skeleton", "ablation", tta=True))
    return methods
