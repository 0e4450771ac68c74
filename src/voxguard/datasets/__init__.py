"""Corpora as one dataset model, leak-free splits, and cached feature extraction.

Typical use::

    from voxguard.datasets import load_dataset, group_split, leave_one_family_out, extract_features

    ds = load_dataset("../shared/corpus")                  # manifest, ASVspoof, folders, ... detected
    split = group_split(ds, by=("speaker", "utt_group"), test_size=0.2, seed=0)
    split.save("splits/dev_grouped.json")
    feats = extract_features(ds, "lfcc", pool=mean_std_pool, workers=4)
    X, y, idx = feats.to_arrays()

Modules: :mod:`.base` (the model: :class:`Item`, :class:`Dataset`, :class:`DatasetError`),
:mod:`.manifest`, :mod:`.folder`, :mod:`.asvspoof`, :mod:`.corpora` (WaveFake, In-the-Wild,
Fake-or-Real, DEEP-VOICE, MLAAD), :mod:`.families` (generator family rules), :mod:`.detect`
(:func:`load_dataset`), :mod:`.splits`, :mod:`.cache`.
"""

from __future__ import annotations

from voxguard.datasets.asvspoof import load_asvspoof2019, load_asvspoof2021
from voxguard.datasets.base import (
    AUDIO_EXTENSIONS,
    BONAFIDE,
    LABELS,
    SPOOF,
    Dataset,
    DatasetError,
    Item,
    connected_groups,
    normalise_label,
)
from voxguard.datasets.cache import (
    FEATURE_VERSION,
    FeatureCache,
    FeatureConfig,
    FeatureFailure,
    FeatureResult,
    content_hash,
    default_cache_dir,
    extract_features,
    mean_std_pool,
)
from voxguard.datasets.corpora import load_deep_voice, load_fake_or_real, load_in_the_wild, load_mlaad, load_wavefake
from voxguard.datasets.detect import LOADERS, detect_format, load_dataset
from voxguard.datasets.families import ASVSPOOF2019_ATTACKS, family_from_name
from voxguard.datasets.folder import load_folder
from voxguard.datasets.manifest import MANIFEST_COLUMNS, load_manifest, write_manifest
from voxguard.datasets.splits import (
    Split,
    corpus_split,
    cross_corpus_split,
    group_kfold,
    group_split,
    leave_one_family_out,
    random_split,
)

__all__ = [
    "ASVSPOOF2019_ATTACKS",
    "AUDIO_EXTENSIONS",
    "BONAFIDE",
    "FEATURE_VERSION",
    "LABELS",
    "LOADERS",
    "MANIFEST_COLUMNS",
    "SPOOF",
    "Dataset",
    "DatasetError",
    "FeatureCache",
    "FeatureConfig",
    "FeatureFailure",
    "FeatureResult",
    "Item",
    "Split",
    "connected_groups",
    "content_hash",
    "corpus_split",
    "cross_corpus_split",
    "default_cache_dir",
    "detect_format",
    "extract_features",
    "family_from_name",
    "group_kfold",
    "group_split",
    "leave_one_family_out",
    "load_asvspoof2019",
    "load_asvspoof2021",
    "load_dataset",
    "load_deep_voice",
    "load_fake_or_real",
    "load_folder",
    "load_in_the_wild",
    "load_manifest",
    "load_mlaad",
    "load_wavefake",
    "mean_std_pool",
    "normalise_label",
    "random_split",
    "write_manifest",
]
