"""init_data_config options: which files (TYPE, labels to keep, QC marks), how they are split, what
is checked; built once from the command line or by a library caller."""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal, get_args

from ..core.config import TYPES, ConfigType
from ..core.errors import UsageError
from ..core.options import normalise_fields
from .channels import parse_channel
from .split import SPLIT_BY, STRATIFY, SplitBy, Stratify, validate_ratios

TOOL_NAME = "totalseg_bids.init_data_config"
#: ``--check-geometry``: refuse the config (``error``) or log each problem (``warn``).
GeometryMode = Literal["error", "warn"]
GEOMETRY_MODES: tuple[str, ...] = get_args(GeometryMode)


@dataclass(frozen=True)
class InitConfigOptions:
    """How the listed files become a config: their TYPE, the split, which labels to keep, what to check.

    ``check_geometry``: False/None (no check), True/``'error'`` (raise
    GeometryError) or ``'warn'`` (log); stored as None, ``error`` or ``warn``.
    ``label_dir``/``label`` keep only the labels of that derivatives folder /
    ``label-`` name; several labels left for one image are refused unless
    ``allow_several_labels`` (see :func:`~.labels.choose_labels`). ``datasets_path``:
    the DATASETS_PATH to write (default: the datasets' common parent).
    ``label_suffix``/``contrasts``: what a query of BIDS datasets finds (not a path
    list); ``qc_marks``: marks exported from the QC report, dropping labels marked
    one of ``exclude`` (or, with ``require_pass``, not marked pass). ``channels``: several
    images per case, named like its image with other entities and suffix (see
    :mod:`.channels`); entries then become ``{"IMAGE": [...], "LABEL": ...}`` objects.

    >>> InitConfigOptions(type="image", check_geometry=True).type, InitConfigOptions(check_geometry=True).check_geometry
    ('IMAGE', 'error')
    """

    type: ConfigType = "LABEL"
    split_validation: float = 0.1
    split_test: float = 0.1
    seed: int = 42
    split_by: SplitBy = "subject"
    stratify: Stratify | None = None
    check_geometry: bool | GeometryMode | None = None
    datasets_path: str | Path | None = None
    datalad_get: bool = False
    label_dir: str | None = None
    label: str | None = None
    allow_several_labels: bool = False
    label_suffix: str | None = None
    contrasts: tuple[str, ...] | None = None
    channels: tuple[str, ...] | None = None
    qc_marks: Path | None = None
    exclude: tuple[str, ...] = ("fail",)
    require_pass: bool = False

    def __post_init__(self) -> None:
        validate_ratios(self.split_validation, self.split_test)
        normalise_fields(self, tuples=("contrasts", "exclude", "channels"), paths=("qc_marks",))
        for spec in self.channels or ():
            parse_channel(spec)  # a bad spec is a usage error before any file is read
        type_, mode = _check_options(self.type, self.split_by, self.stratify, self.check_geometry)
        object.__setattr__(self, "type", type_)
        object.__setattr__(self, "check_geometry", mode)
        if type_ != "LABEL" and (self.label_dir or self.label):
            raise UsageError("--label-dir and --label select labels", None, "use them with --type LABEL")

    @property
    def ratios(self) -> tuple[Fraction, Fraction, Fraction]:
        """(TRAINING, VALIDATION, TESTING) as exact fractions."""
        return validate_ratios(self.split_validation, self.split_test)


def _check_options(type_: str, split_by: str, stratify: str | None, check_geometry: bool | str | None
                   ) -> tuple[str, str | None]:
    """The upper-cased type and the geometry mode (None, ``error``, ``warn``); UsageError otherwise."""
    type_ = str(type_).upper()
    if type_ not in TYPES:
        raise UsageError(f"unknown type {type_!r}", None, "use LABEL or IMAGE")
    if split_by not in SPLIT_BY:
        raise UsageError(f"unknown --split-by {split_by!r}", None, f"use one of {', '.join(SPLIT_BY)}")
    if stratify not in (None, *STRATIFY):
        raise UsageError(f"unknown --stratify {stratify!r}", None, f"use one of {', '.join(STRATIFY)}")
    mode = {False: None, None: None, True: "error"}.get(check_geometry, check_geometry)  # type: ignore[arg-type]
    if mode not in (None, *GEOMETRY_MODES):
        raise UsageError(f"unknown --check-geometry {check_geometry!r}", None, "use error or warn")
    return type_, mode
