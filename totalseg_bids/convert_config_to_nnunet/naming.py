"""Case ids and channel names: how a config's cases are named inside the nnU-Net dataset.

Case ids are built from BIDS entities (``<Name>_<dataset>_sub-01_ses-02_acq-sag_T2w``)
so a person can read them; channel names decide nnU-Net's normalisation.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence

from ..core.bids import BidsName, is_ct_suffix
from ..core.config import Case, contrasts_code
from ..core.errors import InputError, UsageError

log = logging.getLogger(__name__)

_TOKEN_RE = re.compile(r"[^A-Za-z0-9-]+")
_CHANNEL_TAIL_RE = re.compile(r"_\d{4}$")


def safe_token(text: str) -> str:
    """A case-id fragment: runs of characters other than letters, digits and '-'
    become one '-' (nnU-Net splits case ids from channel indices at '_').

    >>> safe_token("whole spine_v2")
    'whole-spine-v2'
    """
    return _TOKEN_RE.sub("-", text).strip("-") or "x"


def case_id(dataset_name: str, source_dataset: str, image: BidsName) -> str:
    """A readable case id from BIDS entities: ``<Name>_<dataset>_<entities>_<suffix>``.

    It never ends like a channel index (``_0000``), which nnU-Net would
    mistake for one.

    >>> case_id("SacrumDataset", "whole-spine", BidsName.parse("sub-01_ses-02_acq-sag_T2w.nii.gz"))
    'SacrumDataset_whole-spine_sub-01_ses-02_acq-sag_T2w'
    """
    cid = "_".join([dataset_name, safe_token(source_dataset), image.source().stem])
    if _CHANNEL_TAIL_RE.search(cid):
        cid += "x"
    return cid


def unique_ids(ids: Sequence[str]) -> list[str]:
    """Make ids unique by appending ``-dup2``, ``-dup3``... to repeats, in order.

    >>> unique_ids(["a", "b", "a", "a"])
    ['a', 'b', 'a-dup2', 'a-dup3']
    """
    seen: dict[str, int] = {}
    out = []
    for i in ids:
        seen[i] = seen.get(i, 0) + 1
        out.append(i if seen[i] == 1 else f"{i}-dup{seen[i]}")
    return out


def default_channel_name(suffixes: Iterable[str]) -> str:
    """The ``channel_names`` entry for the suffixes found in one channel.

    nnU-Net picks the normalisation from this name: ``CT`` (any case) selects
    CT normalisation, anything else z-scoring. So CT images are named ``CT``
    and MRI never is: one MRI suffix keeps its name, mixed MRI suffixes get the
    legacy contrasts code.

    >>> default_channel_name(["T2w"])
    'T2w'
    >>> default_channel_name(["T1w", "T2w"])
    't1_t2'
    >>> default_channel_name(["ct"])
    'CT'
    """
    found = sorted(set(suffixes))
    if found and all(is_ct_suffix(s) for s in found):
        return "CT"
    if any(is_ct_suffix(s) for s in found):
        raise InputError(f"one channel mixes CT and MRI images ({', '.join(found)})", None,
                         "nnU-Net normalises CT and MRI differently: convert them as separate datasets")
    if len(found) == 1:
        return found[0]
    return contrasts_code(found) or "MRI"


def channel_names(cases: Sequence[Case], channels: Sequence[str] | None) -> dict[str, str]:
    """``dataset.json``'s ``channel_names``: ``channels`` as given (checked against the CT rule),
    else one name per channel from the images' suffixes."""
    nchan = {len(c.images) for c in cases}
    if len(nchan) != 1:
        raise InputError(f"cases have different numbers of channels ({sorted(nchan)})", None,
                         "give every case the same number of IMAGE entries")
    n = nchan.pop()
    suffixes = [[BidsName.parse(c.images[i]).suffix for c in cases] for i in range(n)]
    if channels:
        if len(channels) != n:
            raise UsageError(f"--channels names {len(channels)} channel(s) but cases have {n}", None,
                             f"give {n} name(s)")
        for i, name in enumerate(channels):
            is_ct = all(is_ct_suffix(s) for s in suffixes[i])
            if name.casefold() == "ct" and not is_ct:
                raise UsageError(f"channel {i} holds MRI images ({', '.join(sorted(set(suffixes[i])))}) "
                                 "but is named CT, which selects CT normalisation", None,
                                 "name MRI channels by their contrast (e.g. T2w)")
            if is_ct and name.casefold() != "ct":
                log.warning("channel %d (%s) holds CT images: nnU-Net z-score normalises it; only the name "
                            "'CT' selects CT normalisation", i, name)
        return {str(i): n_ for i, n_ in enumerate(channels)}
    return {str(i): default_channel_name(s for s in suffixes[i] if s) for i in range(n)}

