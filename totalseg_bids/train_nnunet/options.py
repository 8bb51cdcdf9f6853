"""The options of a training run (one frozen dataclass)."""

from __future__ import annotations

from dataclasses import dataclass

from ..core.errors import UsageError
from ..nnunet.naming import DEFAULT_CONFIGURATION, DEFAULT_PLANS, parse_fold
from ..nnunet.paths import DEFAULT_TRAINER


@dataclass(frozen=True)
class TrainOptions:
    """What to train: nnU-Net's configurations, folds, trainer and plans, on which device.

    ``folds``: fold numbers of the split file, or ``("all",)`` for every fold in it;
    ``device`` None picks cuda when torch sees a GPU; ``preprocess`` False reuses
    an earlier plan/preprocess; ``npz`` saves the validation probabilities that
    ensembling needs (None: on when several configurations are trained);
    ``find_best`` runs ``nnUNetv2_find_best_configuration`` once every fold of the
    configurations is trained; ``overwrite`` trains complete folds again (else they
    are skipped, an interrupted fold continues from its latest checkpoint);
    ``extra_args`` go to ``nnUNetv2_train`` as they are.
    """

    configurations: tuple[str, ...] = (DEFAULT_CONFIGURATION,)
    folds: tuple[str, ...] = ("0",)
    trainer: str = DEFAULT_TRAINER
    plans: str = DEFAULT_PLANS
    device: str | None = None
    preprocess: bool = True
    npz: bool | None = None
    find_best: bool = True
    overwrite: bool = False
    extra_args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        # lists from callers and the CLI become tuples, so the options stay hashable and frozen
        configurations = (self.configurations,) if isinstance(self.configurations, str) else self.configurations
        object.__setattr__(self, "configurations", tuple(dict.fromkeys(configurations)))
        object.__setattr__(self, "folds", tuple(dict.fromkeys(str(f).strip() for f in self.folds)))
        object.__setattr__(self, "extra_args", tuple(self.extra_args))
        if not self.folds:
            raise UsageError("no fold to train", None, "give folds, e.g. -f 0 1 2 3 4 or -f all")
        if not self.configurations:
            raise UsageError("no configuration to train", None, "e.g. -c 3d_fullres")
        if "all" in self.folds and len(self.folds) > 1:
            raise UsageError("-f all already names every fold", None, "give -f all or fold numbers")
        for fold in self.folds:
            parse_fold(fold)

    @property
    def save_npz(self) -> bool:
        """Whether ``nnUNetv2_train`` saves the validation probabilities (``--npz``)."""
        return bool(self.npz) if self.npz is not None else (len(self.configurations) > 1
                                                            or "--npz" in self.extra_args)
