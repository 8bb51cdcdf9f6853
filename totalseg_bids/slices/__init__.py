"""Export 2D slices of config images and masks (MMSegmentation or nnU-Net 2D layout).

Seeds 001/002/004 as a library stage. Every volume is first reoriented to the
closest canonical (RAS+) orientation (``nibabel.as_closest_canonical`` logic:
axes are only permuted and flipped, never interpolated), so ``axial`` /
``coronal`` / ``sagittal`` mean the same thing for LPS CTs, sagittal MRIs and
oblique acquisitions. An oblique image is sliced along its *closest* world
axis: its slices are tilted by the obliquity (no resampling; crop/resample
first with ``totalseg_bids.crop --spacing`` when that matters). In-plane
spacing is not equalised either.

2D arrays are shown the usual way: the top row is superior (sagittal,
coronal) or anterior (axial), and columns run along +x / +y of RAS+
(axial/coronal: the subject's left at the left edge of the picture).

Intensities: CT windows (``brain`` W80/L40, ``bone`` W2000/L500, ``soft``
W400/L40 or ``W,L``) or per-volume percentile scaling for MRI, to ``uint8``
for png/tif; ``npy`` keeps raw ``float32``. Masks are ``uint8`` class
indices; when the config's label values are not consecutive (TotalSegmentator
ids such as 25, 27, 77) they are renumbered 1..N in ascending order and
``classes.tsv`` records ``index``, ``name``, ``source_value``.

Layouts:

* ``mmseg``: ``images/{train,val,test}/<name>.<ext>`` and
  ``masks/{train,val,test}/<name>.<ext>``. Several channels (multi-image
  config entries, e.g. CTA + NCCT) are stacked in one file: an RGB PNG for
  2-3 channels (a missing third channel is 0), an ``(H, W, C)`` TIFF or NPY.
* ``nnunet2d``: ``<out>/Dataset<NNN>_<Name>/`` readable by nnU-Net's
  ``NaturalImage2DIO``: PNG only, one grayscale file per channel
  (``<case>_0000.png``, ``_0001``...), ``labelsTr``, ``imagesTs`` (+``labelsTs``),
  ``dataset.json`` (``file_ending: .png``, ``overwrite_image_reader_writer:
  NaturalImage2DIO``) and ``splits_final.json`` carrying the config's
  TRAINING/VALIDATION split (copy it to ``nnUNet_preprocessed/Dataset<NNN>_<Name>/``).

Slice names keep the BIDS entities and the slice index
(``sub-01_ses-02_acq-sag_T2w_axial-012``); ``slices.tsv`` maps every file
back to its volume(s), split, axis and index (in the reoriented volume, plus
the source voxel axis and index). Splits come from the config (TRAINING ->
train, VALIDATION -> val, TESTING -> test); a subject listed in two splits is
refused, so slices of one subject never cross splits. When image names clash
across datasets (two datasets with a ``sub-03``), every slice name starts with
its dataset (``ds1_sub-03_T1w_axial-012``), as convert_config_to_nnunet's
case ids do. ``slices_request.json`` records what an export was made from: the
same command again is a no-op; a changed request is refused naming the
difference (``--overwrite`` exports again).

Stdout: one JSON line per export (``status`` written, or skipped when up to
date; ``path`` the manifest ``slices.tsv``; ``cases``; ``slices``).

``python -m totalseg_bids.slices --config train.json --out slices [--layout nnunet2d]``;
library callers pass :class:`SlicesOptions` (or its fields as keywords) to
:func:`export_slices`. Modules: :mod:`.options`, :mod:`.planes` (RAS+ pictures),
:mod:`.classes` (class values), :mod:`.files` (names, bytes, layouts),
:mod:`.cases` (the config's cases), :mod:`.manifest`, :mod:`.nnunet2d`,
:mod:`.case`, :mod:`.batch`, :mod:`.cli`.
"""

from .batch import SlicesResult, class_names, export_base, export_cases, export_slices
from .case import CaseSlices, SliceJob, export_case, label_values, load_case
from .cases import SliceCase, check_channels, config_cases
from .classes import class_lut, class_mapping, classes_tsv
from .cli import get_parser, main
from .files import encode_image, slice_paths, slice_stem, write_slice
from .manifest import MANIFEST, MANIFEST_COLUMNS, REQUEST_FILE
from .nnunet2d import channel_names, write_nnunet_metadata
from .options import AXES, FORMATS, LAYOUTS, Axis, Format, Layout, SlicesOptions
from .planes import plane, select_slices, source_index, to_ras

__all__ = [
    "AXES", "Axis", "CaseSlices", "FORMATS", "Format", "LAYOUTS", "Layout", "MANIFEST", "MANIFEST_COLUMNS",
    "REQUEST_FILE", "SliceCase", "SliceJob", "SlicesOptions", "SlicesResult", "channel_names", "check_channels",
    "class_lut", "class_mapping", "class_names", "classes_tsv", "config_cases", "encode_image", "export_base",
    "export_case", "export_cases", "export_slices", "get_parser", "label_values", "load_case", "main", "plane",
    "select_slices", "slice_paths", "slice_stem", "source_index", "to_ras", "write_nnunet_metadata", "write_slice",
]
