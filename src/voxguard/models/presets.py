"""Named training recipes of segmental detectors (``voxguard train --model`` / ``compare --models``)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from voxguard.audio import PreprocessConfig
from voxguard.errors import VoxguardError
from voxguard.features.segmental import SegmentalConfig
from voxguard.models.segmental import FRAME_CLASSIFIERS, SegmentalClassifier, frame_model


@dataclass(frozen=True)
class Preset:
    """Views, classifier and the preprocessing a recipe trains with.

    ``gate_db``: leave frames this far below the loud frames out of the pooling (see
    :attr:`SegmentalConfig.gate_db`). ``trim_margin_s``: keep this much audio around the detected
    speech when trimming, so that the VAD's onset jitter never cuts speech (safe only with a gate,
    which keeps the margin's silence out of the features). ``dc_filter``, ``trim_mode``: see
    :class:`voxguard.audio.PreprocessConfig`. ``drop_delta_means``, ``level_split``,
    ``floor_gate_db``: see :class:`SegmentalConfig`.
    """

    views: tuple[str, ...]
    #: "svm" | "logreg" on pooled statistics; "cnn" | "cnn-svm" | "gmm" | "fisher-svm" on frame crops.
    classifier: str = "svm"
    C: float = 1.0
    gate_db: float | None = None
    trim_margin_s: float = 0.0
    dc_filter: str = "mean"
    trim_mode: str = "vad"
    drop_delta_means: bool = False
    level_split: str | None = None
    floor_gate_db: float | None = None
    #: Extra parameters of a frame model (``FrameCNNClassifier``, ``FrameGMMClassifier``, ``FrameFisherClassifier``).
    params: tuple[tuple[str, Any], ...] = ()
    #: Analysis rate (Hz) of the preprocessing and the features; the wide-band views need 22.05 kHz.
    sample_rate: int = 16_000

    def model(self, C: float | None = None) -> Any:
        """The unfitted model: a :class:`SegmentalClassifier`, or a frame model (see ``classifier``)."""
        features = SegmentalConfig(
            views=self.views,
            gate_db=self.gate_db,
            drop_delta_means=self.drop_delta_means,
            level_split=self.level_split,
            floor_gate_db=self.floor_gate_db,
            sample_rate=self.sample_rate,
        )
        if self.classifier in FRAME_CLASSIFIERS:
            return frame_model({"classifier": self.classifier, "C": C or self.C, **dict(self.params)}, features)
        return SegmentalClassifier(features=features, classifier=self.classifier, C=C or self.C)

    def preprocess(self) -> PreprocessConfig:
        return PreprocessConfig(
            trim_margin_s=self.trim_margin_s,
            dc_filter=self.dc_filter,
            trim_mode=self.trim_mode,
            sample_rate=self.sample_rate,
        )


CNN_PARAMS = (
    ("input_stats", True),
    ("lr", 5e-4),
    ("time_masks", 2),
    ("feature_masks", 2),
    ("patience", 6),
    ("max_epochs", 20),
)

# voxguard-v2's recipe: band capped at 7 kHz (resampling-invariant); silence-gated pooling, energy
# trimming with a margin and a causal DC blocker (invariant to leading/trailing silence).
_V2_RECIPE = Preset(
    ("lfcc_4_7k_hann", "band_flatness_7k"),
    C=3.0,
    gate_db=40.0,
    trim_margin_s=0.25,
    dc_filter="highpass",
    trim_mode="energy",
    drop_delta_means=True,
)

MODEL_PRESETS: dict[str, Preset] = {
    # The comparison of docs/results.md.
    "seed-mfcc-svm": Preset(("mfcc20",)),
    "lfcc-svm": Preset(("lfcc",)),
    "lfcc48-logreg": Preset(("lfcc_4_8k",), "logreg"),
    "lfcc48-flatness-svm": Preset(("lfcc_4_8k", "band_flatness"), C=3.0),
    "lfcc48h-flatness-svm": Preset(("lfcc_4_8k_hann", "band_flatness"), C=3.0),  # one shared STFT (voxguard-v1)
    # The seed's proposed "more advanced features": MFCC + LFCC + spectral + prosody + formants.
    "full-features-svm": Preset(("mfcc", "lfcc", "spectral", "prosody")),
    "lfcc48-flatness-cqcc-svm": Preset(("lfcc_4_8k", "band_flatness", "cqcc"), C=3.0),
    "lfcc47h-flatness7k-gated-svm": _V2_RECIPE,  # voxguard-v2
    # voxguard-v2's recipe with the louder and quieter halves of the frames pooled apart (issue 8:
    # the quiet frames' evidence is the first that added noise masks).
    "lfcc47h-flatness7k-split-svm": dataclasses.replace(_V2_RECIPE, level_split="halves"),
    # For babble (issue 8): frames within 6 dB of the clip's floor left out (under babble, the
    # pauses hold only the other talkers) and the loudest quarter pooled again (the frames where
    # the voice is furthest above the noise). Trained on babble copies, DEV grouped 5-fold with
    # every 10-dB babble clip sent to it: 12.6 % EER with the split expert vs 14.1 % for
    # voxguard-v4's babble pair (docs/robustness.md).
    "lfcc47h-flatness7k-floor-svm": dataclasses.replace(_V2_RECIPE, level_split="loud-quarter", floor_gate_db=6.0),
    # voxguard-v2's frames and preprocessing, pooled as Fisher vectors of an 8-component GMM
    # instead of mean/std (models.frame_fisher; issue 5).
    "lfcc47h-flatness7k-gated-fisher-svm": dataclasses.replace(_V2_RECIPE, classifier="fisher-svm"),
    # Wide-band (issue 5): voxguard-v2's recipe at 22.05 kHz with the 8-9.8 kHz cepstra and
    # flatness added, for input whose band above 8 kHz is real (docs/results.md, "The 8-10 kHz
    # band"); and the same rate without the new views, the baseline that isolates the band's worth.
    "lfcc47h-810-flatness-wb-svm": dataclasses.replace(
        _V2_RECIPE,
        views=("lfcc_4_7k_hann", "band_flatness_7k", "lfcc_8_10k_hann", "band_flatness_8_10k"),
        sample_rate=22_050,
    ),
    "lfcc47h-flatness7k-wb-svm": dataclasses.replace(_V2_RECIPE, sample_rate=22_050),
    "lfcc47h-810-flatness-wb-fisher-svm": dataclasses.replace(
        _V2_RECIPE,
        views=("lfcc_4_7k_hann", "band_flatness_7k", "lfcc_8_10k_hann", "band_flatness_8_10k"),
        sample_rate=22_050,
        classifier="fisher-svm",
    ),
    # Frame models (issue 5): the ASVspoof LFCC-GMM baseline, and a light CNN over the v2 frames
    # with the v2 preprocessing, alone and as the seed's hybrid (CNN embeddings + SVM).
    "lfcc-gmm": Preset(("lfcc",), "gmm"),
    # Settings from a search on grouped folds 1-2 (docs/results.md): mean fold EER 17.4 % with the
    # defaults, 16.2 % with input_stats, 12.1 % adding lr 5e-4, masks and up to 20 epochs.
    "lfcc47h-flatness7k-gated-cnn": Preset(
        ("lfcc_4_7k_hann", "band_flatness_7k"),
        "cnn",
        gate_db=40.0,
        trim_margin_s=0.25,
        dc_filter="highpass",
        trim_mode="energy",
        params=CNN_PARAMS,
    ),
    # A 2-D LCNN on a 0-7 kHz log-linear spectrogram (56 linear filters), v2's preprocessing.
    "lfbe7k-gated-cnn2d": Preset(
        ("lfbe_7k",),
        "cnn2d",
        gate_db=40.0,
        trim_margin_s=0.25,
        dc_filter="highpass",
        trim_mode="energy",
        # The best of 8 settings on clean DEV, trained on a GPU (docs/results.md, "The 2-D LCNN").
        params=(("width", 64), ("patience", 8), ("max_epochs", 40)),
    ),
    "lfcc47h-flatness7k-gated-cnn-svm": Preset(
        ("lfcc_4_7k_hann", "band_flatness_7k"),
        "cnn-svm",
        C=1.0,
        gate_db=40.0,
        trim_margin_s=0.25,
        dc_filter="highpass",
        trim_mode="energy",
        params=CNN_PARAMS,
    ),
}
DEFAULT_PRESET = "lfcc48h-flatness-svm"


@dataclass(frozen=True)
class RoutedRecipe:
    """Condition experts and how the router's classes use them (voxguard.models.routing).

    ``experts``: (label, preset, augmentation policy) each; ``classes``: router class -> the
    labels of the experts averaged for it; ``router_views``: views the router reads besides the
    first expert's (:func:`voxguard.models.routing.router_view`); ``router_head``: one of
    :data:`voxguard.models.routing.ROUTER_HEADS`. All experts share the preprocessing of the first.
    """

    experts: tuple[tuple[str, str, str], ...]
    classes: tuple[tuple[str, tuple[str, ...]], ...]
    router_views: tuple[str, ...] = ()
    router_head: str = "logistic"


_V2, _SPLIT, _FLOOR = "lfcc47h-flatness7k-gated-svm", "lfcc47h-flatness7k-split-svm", "lfcc47h-flatness7k-floor-svm"
# voxguard-v3's two members (trained with chain*2) for clean, telephone and unrecognised
# conditions, and a codec expert; each routed recipe adds its babble experts.
_MAIN_EXPERTS = (("main", _V2, "chain*2"), ("main-split", _SPLIT, "chain*2"), ("codec", _V2, "only-codec*2"))


def _routed(
    babble_experts: tuple[tuple[str, str, str], ...],
    router_views: tuple[str, ...] = (),
    router_head: str = "logistic",
    extra_main: tuple[tuple[str, str, str], ...] = (),
    extra_main_classes: tuple[str, ...] = ("clean", "telephone", "other"),
) -> RoutedRecipe:
    """``extra_main``: experts added to the main pair for the router classes ``extra_main_classes``."""
    main = ("main", "main-split")
    extra = tuple(label for label, _, _ in extra_main)
    babble = tuple(label for label, _, _ in babble_experts)

    def mains(cls: str) -> tuple[str, ...]:
        return main + extra if cls in extra_main_classes else main

    return RoutedRecipe(
        experts=_MAIN_EXPERTS + babble_experts + extra_main,
        classes=(
            ("clean", mains("clean")),
            ("codec", ("codec",)),
            ("babble", babble),
            ("telephone", mains("telephone")),
            ("other", mains("other")),
        ),
        router_views=router_views,
        router_head=router_head,
    )


_FLOOR_BABBLE = (("babble-floor", _FLOOR, "only-babble*4"), ("babble-split", _SPLIT, "only-babble*4"))
_V7_BABBLE = (*_FLOOR_BABBLE, ("babble-low", _FLOOR, "only-babble-low*4"))


ROUTED_RECIPES: dict[str, RoutedRecipe] = {
    # voxguard-v4 (docs/robustness.md, "Condition experts and a router").
    "routed-v3": _routed((("babble", _V2, "only-babble*4"), ("babble-split", _SPLIT, "only-babble*2"))),
    # voxguard-v5: the babble expert on v2's view replaced by one that leaves the frames near the
    # clip's floor out and pools the loudest quarter again, and the split expert trained on as many
    # babble copies (issue 8's babble target; docs/robustness.md, "voxguard-v5").
    "routed-v4": _routed(_FLOOR_BABBLE),
    # voxguard-v6: routed-v4 with a router that also reads the 0-7 kHz log filterbank energies, so
    # that it recognises babble at 10 dB SNR (docs/robustness.md, "voxguard-v6").
    "routed-v5": _routed(_FLOOR_BABBLE, router_views=("lfbe_7k",)),
    # voxguard-v7: routed-v5 with a third babble expert, v5's floor-gated one trained on its own
    # draw of babble copies at 5-15 dB SNR; three babble experts that err differently average
    # better than two (docs/robustness.md, "voxguard-v7").
    "routed-v6": _routed(_V7_BABBLE, router_views=("lfbe_7k",)),
    # voxguard-v8: routed-v6 whose router averages its logistic posteriors with boosted trees',
    # which tell 10-dB babble from the "other" noises (docs/robustness.md, "voxguard-v8").
    "routed-v7": _routed(_V7_BABBLE, router_views=("lfbe_7k",), router_head="logistic+trees"),
    # voxguard-v9: routed-v7 with a Fisher-vector expert beside the two main experts for clean and
    # "other" audio. Not for telephone audio: alone it scores 37.6 % under G.711 mu-law against the
    # v2 recipe's 28.4 %. Mixed offline from the per-fold scores of the 8-condition report it is
    # lower than v8 under 7 conditions and level under mu-law (docs/results.md, "voxguard-v9").
    "routed-v8": _routed(
        _V7_BABBLE,
        router_views=("lfbe_7k",),
        router_head="logistic+trees",
        extra_main=(("fisher", "lfcc47h-flatness7k-gated-fisher-svm", "chain*2"),),
        extra_main_classes=("clean", "other"),
    ),
}


def get_preset(name: str) -> Preset:
    if name not in MODEL_PRESETS:
        raise VoxguardError(f"unknown model preset {name!r}; choose from {', '.join(MODEL_PRESETS)}")
    return MODEL_PRESETS[name]
