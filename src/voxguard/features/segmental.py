"""Segment-level feature vectors: frame features computed once, pooled over any set of segments.

A detector that scores 4-second segments every 2 seconds would recompute overlapping frames if
it ran the extractor per segment. Instead the frame matrix of the whole signal is computed once
and every segment's mean and standard deviation come from cumulative sums: O(n_frames + n_segments)
for any number of overlapping segments.

Views (all on the same 10 ms frame grid at the analysis rate, 16 kHz unless a model says otherwise):

- ``lfcc_4_8k``: 20 LFCC from 20 linear filters between 4 and 8 kHz, + Δ + ΔΔ (ASVspoof-style
  front-end: pre-emphasis, 20 ms Hamming window). The upper band is where vocoders and
  resynthesis leave their artefacts, and it generalises to unseen generator families better
  than full-band LFCC (DEV leave-one-family-out, see docs/results.md);
- ``lfcc_4_8k_hann``: the same cepstra from the shared 25 ms Hann power spectrum (no
  pre-emphasis), so that with ``band_flatness`` one STFT serves both views;
- ``band_flatness``: spectral flatness in 16 equal bands of the shared spectrum (cheap, strong);
- ``lfcc_8_10k_hann``, ``band_flatness_8_10k``: the same cepstra and 4-band flatness between 8 and
  9.8 kHz, for models analysing at 22.05 kHz or more (refused below);
- ``lfbe_7k``: log energies (dB) of 56 linear filters from 0 to 7 kHz (a log-linear spectrogram
  for the 2-D CNN);
- ``cqcc``: 20 constant-Q cepstral coefficients + Δ + ΔΔ;
- ``lfcc`` / ``mfcc``: full-band cepstra + Δ + ΔΔ (baselines); ``mfcc20``: 20 static MFCC (the seed's);
- ``spectral``: centroid, bandwidth, roll-off, flatness, zero-crossing rate, 7-band contrast;
- ``prosody``: F0 in semitones (NaN when unvoiced: such frames do not count in the pooling),
  voicing, aperiodicity, formants F1-F3, full-band flatness — the seed's "more advanced features".
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, replace

import numpy as np
import scipy.fft

from voxguard.errors import FeatureError
from voxguard.features import spectral

HOP_S = 0.010
#: Linear filters of the ``lfbe_7k`` view (0-7 kHz, 125 Hz apart): a log-linear spectrogram for
#: 2-D convolution, band-capped like the other ``7k`` views.
LFBE_FILTERS = 56
#: Band of the wide-band views (Hz): above what a 16-kHz analysis sees, and under the 91 %-of-Nyquist
#: edge of a soxr resampling to 22.05 kHz (10.03 kHz), so a 44.1-kHz recording resampled for
#: analysis keeps all of it. Many neural vocoders leave their artefacts here (docs/results.md,
#: "The 8-10 kHz band").
WIDE_BAND_HZ = (8_000.0, 9_800.0)
#: Lowest analysis rate of the wide-band views.
MIN_WIDE_RATE = 22_050
#: Flatness bands of ``band_flatness_8_10k`` (450 Hz each).
WIDE_FLATNESS_BANDS = 4


@functools.lru_cache(maxsize=8)
def _view_functions(hop: int) -> dict[str, tuple[Callable[[np.ndarray, int], np.ndarray], list[str]]]:
    # Cached: scanning asks for the names and sizes per segment block (read only, never modified).
    def cep(prefix: str, n: int) -> list[str]:
        base = [f"{prefix}{i + 1}" for i in range(n)]
        return base + [f"d_{c}" for c in base] + [f"dd_{c}" for c in base]

    return {
        "lfcc_4_8k": (
            lambda y, sr: spectral.with_deltas(
                spectral.lfcc(y, sr, n_lfcc=20, hop_length=hop, fmin=4000.0, fmax=8000.0)
            ),
            cep("lfcc48_", 20),
        ),
        "lfcc_4_8k_hann": (None, cep("lfcc48h_", 20)),  # computed from the shared spectrum
        "band_flatness": (None, [f"flatness_b{i + 1}" for i in range(16)]),
        "lfcc_4_7k_hann": (None, cep("lfcc47h_", 20)),
        "band_flatness_7k": (None, [f"flatness7k_b{i + 1}" for i in range(14)]),
        "lfbe_7k": (None, [f"lfbe7k_{i + 1}" for i in range(LFBE_FILTERS)]),
        "lfcc_8_10k_hann": (None, cep("lfcc810h_", 20)),
        "band_flatness_8_10k": (None, [f"flatness810_b{i + 1}" for i in range(WIDE_FLATNESS_BANDS)]),
        "cqcc": (lambda y, sr: spectral.with_deltas(spectral.cqcc(y, sr, n_cqcc=20, hop_length=hop)), cep("cqcc", 20)),
        "lfcc": (lambda y, sr: spectral.with_deltas(spectral.lfcc(y, sr, n_lfcc=20, hop_length=hop)), cep("lfcc", 20)),
        "mfcc": (lambda y, sr: spectral.with_deltas(spectral.mfcc(y, sr, n_mfcc=20, hop_length=hop)), cep("mfcc", 20)),
        "mfcc20": (lambda y, sr: spectral.mfcc(y, sr, n_mfcc=20, hop_length=hop), [f"mfcc{i + 1}" for i in range(20)]),
        "spectral": (lambda y, sr: _spectral_descriptors(y, sr, hop), list(SPECTRAL_NAMES)),
        "prosody": (lambda y, sr: _prosody(y, sr, hop), list(PROSODY_NAMES)),
    }


SPECTRAL_NAMES = ("centroid_hz", "bandwidth_hz", "rolloff_hz", "flatness", "zcr", *(f"contrast{i}" for i in range(7)))
PROSODY_NAMES = ("f0_semitones", "voiced", "aperiodicity", "f1_hz", "f2_hz", "f3_hz", "flatness_full")


def _spectral_descriptors(y: np.ndarray, sr: int, hop: int) -> np.ndarray:
    """Centroid, bandwidth, roll-off, flatness, zero-crossing rate and 7-band contrast per frame."""
    kw = {"n_fft": shared_n_fft(sr), "hop_length": hop, "win_length": round(0.025 * sr)}
    rows = [
        spectral.spectral_centroid(y, sr, **kw),
        spectral.spectral_bandwidth(y, sr, **kw),
        spectral.spectral_rolloff(y, sr, **kw),
        spectral.spectral_flatness(y, sr, **kw),
        spectral.zero_crossing_rate(y, sr, frame_length=kw["win_length"], hop_length=hop),
        spectral.spectral_contrast(y, sr, **kw),
    ]
    n = min(r.shape[1] for r in rows)
    return np.concatenate([r[:, :n] for r in rows], axis=0)


def _prosody(y: np.ndarray, sr: int, hop: int) -> np.ndarray:
    """F0 (semitones re 100 Hz, NaN when unvoiced), voicing, aperiodicity, F1-F3, flatness."""
    from voxguard.features.prosody import prosody_features

    X, _ = prosody_features(y, sr, hop_length=hop)
    X = X.copy()
    with np.errstate(invalid="ignore", divide="ignore"):
        X[0] = 12.0 * np.log2(X[0] / 100.0)  # semitones: speaker-independent pitch movement scale
    return X


VIEWS = tuple(_view_functions(160))
#: Views computed from one 25 ms Hann power spectrum per frame (:func:`shared_n_fft` points).
SHARED_SPECTRUM_VIEWS = {
    "lfcc_4_8k_hann",
    "band_flatness",
    "lfcc_4_7k_hann",
    "band_flatness_7k",
    "lfbe_7k",
    "lfcc_8_10k_hann",
    "band_flatness_8_10k",
}
#: Views that read the band above 8 kHz (:data:`WIDE_BAND_HZ`).
WIDE_BAND_VIEWS = {"lfcc_8_10k_hann", "band_flatness_8_10k"}
#: Upper edge of the ``_7k`` views. Resamplers (soxr HQ passes 91 % of Nyquist) and band-limited
#: sources leave 7.3-8 kHz empty or not depending on a file's rate history, so features there
#: encode the recording chain rather than the voice (DEV: rate predicts the label).
CAPPED_BAND_HZ = 7_000.0
#: Values of :attr:`SegmentalConfig.level_split`.
LEVEL_SPLITS = (None, "halves", "loud", "loud-quarter")
#: Percentile of a clip's frame levels that :attr:`SegmentalConfig.floor_gate_db` measures from.
FLOOR_PERCENTILE = 10.0


def shared_n_fft(sr: int) -> int:
    """FFT size of the shared spectrum: 512 while a 25 ms window fits (up to 20.48 kHz, as every
    16-kHz model was trained), above that the smallest fast real-FFT length that holds the window
    (576 at 22.05 kHz, 600 at 24 kHz): zero padding to a power of two would add bins, and time,
    without adding resolution."""
    window = round(0.025 * sr)
    return 512 if window <= 512 else scipy.fft.next_fast_len(window, real=True)


def _level_db(frame_power: np.ndarray) -> np.ndarray:
    """Frame levels in dB (the floor keeps all-zero frames finite)."""
    return 10.0 * np.log10(frame_power + 1e-20)


def quiet_frames(frame_power: np.ndarray, gate_db: float) -> np.ndarray:
    """Frames more than ``gate_db`` below the 95th percentile of frame power, shape ``(n_frames,)`` bool.

    All False when every frame (or none) would be quiet: a signal that is all "silence" keeps its
    frames rather than losing them all.
    """
    level = _level_db(frame_power)
    quiet = level < np.percentile(level, 95) - gate_db
    return quiet if quiet.any() and not quiet.all() else np.zeros(len(quiet), dtype=bool)


def below_floor(frame_power: np.ndarray, floor_gate_db: float) -> np.ndarray:
    """Frames less than ``floor_gate_db`` above the clip's floor, shape ``(n_frames,)`` bool.

    The floor is the :data:`FLOOR_PERCENTILE` th percentile of the frame levels (dB) of the whole
    clip. Under steady background noise (babble, a crowd, a fan) the floor is the noise, and the
    frames just above it are pauses that hold only the noise; in clean speech the floor is the
    silence around and between words, already gated. All False when every frame would go.
    """
    level = _level_db(frame_power)
    below = level < np.percentile(level, FLOOR_PERCENTILE) + floor_gate_db
    return below if not below.all() else np.zeros(len(below), dtype=bool)


def fill_from_nearest(x: np.ndarray, missing: np.ndarray) -> np.ndarray:
    """Replace the ``missing`` frames (columns) of ``x`` (n_features, n_frames) by the nearest kept frame.

    Deltas computed afterwards then see no jump at the edge of a gated stretch, so the first and
    last speech frames get the same deltas whatever (silence, room tone, zeros) was cut off.
    """
    n = x.shape[1]
    if not missing.any() or missing.all():
        return x
    index = np.arange(n)
    prev = np.maximum.accumulate(np.where(missing, -1, index))
    nxt = np.minimum.accumulate(np.where(missing, n, index)[::-1])[::-1]
    prev_ok, next_ok = prev >= 0, nxt < n
    use_next = ~prev_ok | (next_ok & (nxt - index < index - prev))
    source = np.where(use_next, nxt, prev)
    return x[:, source]


def _gate_power(power: np.ndarray, sr: int, band_hz: tuple[float, float] | None) -> np.ndarray:
    """Frame power (n_frames,) float64 that the gate compares: all bins, or those inside ``band_hz``."""
    if band_hz is not None:
        freqs = np.linspace(0.0, sr / 2, power.shape[1])
        power = power[:, (freqs >= band_hz[0]) & (freqs <= band_hz[1])]
    return power.sum(axis=1).astype(np.float64)  # float32 pairwise sums


def _shared_spectrum_views(
    y: np.ndarray, sr: int, cfg: SegmentalConfig
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray | None]:
    """The spectrum-based views from a single STFT (the dominant cost of the default model).

    Returns the views, the quiet-frame mask of ``cfg.gate_db`` (all False without a gate) and
    every frame's power summed over all bins (``None`` when neither the gate nor
    ``cfg.level_split`` needs it).
    With a gate, the static cepstra of quiet frames are replaced by the nearest speech frame's
    before deltas are taken (:func:`fill_from_nearest`).
    """
    n_fft = shared_n_fft(sr)
    power = spectral.stft_power_frames(y, n_fft=n_fft, hop_length=cfg.hop_length, win_length=round(0.025 * sr))
    # Whole-spectrum frame power only where the gate or the level split reads it (scanning's hot path).
    needs_level = cfg.pools_by_level or (cfg.gate_db is not None and cfg.gate_band_hz is None)
    level = _gate_power(power, sr, None) if needs_level else None
    quiet = np.zeros(len(power), dtype=bool)
    if cfg.gate_db is not None:
        gate_power = level if cfg.gate_band_hz is None else _gate_power(power, sr, cfg.gate_band_hz)
        quiet = quiet_frames(gate_power, cfg.gate_db)

    def cepstra(fmax: float, fmin: float = 4000.0) -> np.ndarray:
        fb = spectral.linear_filterbank(sr, n_fft, 20, fmin, fmax)
        static = np.ascontiguousarray(spectral.cepstra_from_power(power, fb, 20).T)
        return spectral.with_deltas(fill_from_nearest(static, quiet))

    out: dict[str, np.ndarray] = {}
    if "lfcc_4_8k_hann" in cfg.views:
        out["lfcc_4_8k_hann"] = cepstra(8000.0)
    if "band_flatness" in cfg.views:
        out["band_flatness"] = np.ascontiguousarray(spectral.band_flatness_from_power(power, 16).T)
    if "lfcc_4_7k_hann" in cfg.views:
        out["lfcc_4_7k_hann"] = cepstra(CAPPED_BAND_HZ)
    if "lfbe_7k" in cfg.views:
        fb = spectral.linear_filterbank(sr, n_fft, LFBE_FILTERS, 0.0, CAPPED_BAND_HZ)
        energies = np.maximum(power @ fb.T, 1e-10)
        out["lfbe_7k"] = np.ascontiguousarray((10.0 * np.log10(energies)).T.astype(np.float32))
    if "band_flatness_7k" in cfg.views:
        top = int(round(CAPPED_BAND_HZ / (sr / n_fft)))  # bin of 7 kHz: 14 bands of 500 Hz (16 bins at 16 kHz)
        out["band_flatness_7k"] = np.ascontiguousarray(spectral.band_flatness_from_power(power[:, :top], 14).T)
    if "lfcc_8_10k_hann" in cfg.views:
        out["lfcc_8_10k_hann"] = cepstra(WIDE_BAND_HZ[1], WIDE_BAND_HZ[0])
    if "band_flatness_8_10k" in cfg.views:
        lo, hi = (int(round(f / (sr / n_fft))) for f in WIDE_BAND_HZ)
        flat = spectral.band_flatness_from_power(power[:, lo:hi], WIDE_FLATNESS_BANDS)
        out["band_flatness_8_10k"] = np.ascontiguousarray(flat.T)
    return out, quiet, level


@dataclass(frozen=True)
class SegmentalConfig:
    """Which views to stack and which statistics to pool (saved in model cards)."""

    views: tuple[str, ...] = ("lfcc_4_8k", "band_flatness")
    stats: tuple[str, ...] = ("mean", "std")
    sample_rate: int = 16_000
    #: Frames more than ``gate_db`` below the signal's loud frames (95th percentile of frame power)
    #: are left out of the pooled statistics: silence, dither and room tone say nothing about the
    #: voice, and how much of them a clip has must not move its score. ``None``: every frame counts.
    gate_db: float | None = None
    #: Measure the gate's frame power in this band (Hz) instead of the whole spectrum: the frames
    #: kept are then those where the band the model reads is loud, not merely the voiced ones.
    gate_band_hz: tuple[float, float] | None = None
    #: Pool the frames by level as well: ``"halves"``, the louder and the quieter half of the
    #: kept frames apart; ``"loud"``, all kept frames and, in addition, the louder half. Either
    #: doubles the statistics. Evidence in the quiet frames (room tone, a vocoder's noise between
    #: sounds) is the first that added noise masks; a classifier can then weigh the two apart.
    #: ``None``: one pool.
    level_split: str | None = None
    #: Leave frames less than this many dB above the clip's floor (its 10th-percentile frame level)
    #: out of the pooled statistics as well (:func:`below_floor`). Under babble the pauses between
    #: words hold only the other talkers, real speech that pulls a fake clip's statistics towards
    #: "real"; clean speech loses (almost) nothing, its floor being silence. Unlike ``gate_db`` the
    #: frames stay in the deltas' context. ``None``: no floor gate.
    floor_gate_db: float | None = None
    #: Leave out the means of Δ and ΔΔ frames. Over a segment they are about (last - first) /
    #: length: near zero with a tiny spread in training data, so after standardisation the few
    #: edge frames a trim or an added silence changes swing the score (voxguard-v2 drops them;
    #: their standard deviations stay).
    drop_delta_means: bool = False

    def __post_init__(self) -> None:
        unknown = [v for v in self.views if v not in VIEWS]
        if unknown or not self.views:
            raise FeatureError(f"unknown views {unknown}; choose from {', '.join(VIEWS)}")
        if not set(self.stats) <= {"mean", "std"} or not self.stats:
            raise FeatureError("stats must be a non-empty subset of ('mean', 'std')")
        if self.level_split not in LEVEL_SPLITS:
            raise FeatureError(f"level_split must be one of {LEVEL_SPLITS}, got {self.level_split!r}")
        if self.floor_gate_db is not None and not self.floor_gate_db > 0:
            raise FeatureError(f"floor_gate_db must be positive, got {self.floor_gate_db}")
        if self.wide_band and self.sample_rate < MIN_WIDE_RATE:
            raise FeatureError(
                f"views {sorted(WIDE_BAND_VIEWS & set(self.views))} read {WIDE_BAND_HZ[0]:.0f}-"
                f"{WIDE_BAND_HZ[1]:.0f} Hz and need an analysis rate of at least {MIN_WIDE_RATE} Hz, "
                f"got {self.sample_rate} Hz"
            )

    @property
    def wide_band(self) -> bool:
        """Whether a view reads the band above 8 kHz (:data:`WIDE_BAND_VIEWS`)."""
        return bool(WIDE_BAND_VIEWS & set(self.views))

    def frame_key(self) -> tuple[object, ...]:
        """What :func:`frame_matrix` depends on: configs with equal keys can share one frame matrix.

        (``stats`` and ``drop_delta_means`` only change the pooling.)
        """
        return (*self.split_free_frame_key(), self.level_split, self.floor_gate_db)

    def split_free_frame_key(self) -> tuple[object, ...]:
        """:meth:`frame_key` without ``level_split`` and ``floor_gate_db``: what the frames *before*
        the split depend on (configs that differ only in those two share one STFT)."""
        return (self.views, self.sample_rate, self.gate_db, self.gate_band_hz)

    @property
    def pools_by_level(self) -> bool:
        """Whether pooling reads each frame's level (a level split or a floor gate)."""
        return self.level_split is not None or self.floor_gate_db is not None

    @property
    def hop_length(self) -> int:
        return round(HOP_S * self.sample_rate)

    def frame_names(self) -> list[str]:
        table = _view_functions(self.hop_length)
        names = [name for view in self.views for name in table[view][1]]
        if self.level_split is None:
            return names
        pools = ("loud", "quiet") if self.level_split == "halves" else ("all", "loud")  # "loud", "loud-quarter"
        return [f"{n}@{pool}" for pool in pools for n in names]

    def _all_vector_names(self) -> list[str]:
        return [f"{name}_{stat}" for stat in self.stats for name in self.frame_names()]

    def column_mask(self) -> np.ndarray | None:
        """Which pooled columns the model uses (``None``: all); read-only, cached per config."""
        return _column_mask(self) if self.drop_delta_means else None

    def vector_names(self) -> list[str]:
        mask = self.column_mask()
        names = self._all_vector_names()
        return names if mask is None else [n for n, keep in zip(names, mask, strict=True) if keep]

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> SegmentalConfig:
        return cls(
            views=tuple(data.get("views", cls.views)),  # type: ignore[arg-type]
            stats=tuple(data.get("stats", cls.stats)),  # type: ignore[arg-type]
            sample_rate=int(data.get("sample_rate", 16_000)),  # type: ignore[call-overload]
            gate_db=None if data.get("gate_db") is None else float(data["gate_db"]),  # type: ignore[arg-type]
            gate_band_hz=None if data.get("gate_band_hz") is None else tuple(data["gate_band_hz"]),  # type: ignore
            drop_delta_means=bool(data.get("drop_delta_means", False)),
            level_split=data.get("level_split"),  # type: ignore[arg-type]
            floor_gate_db=None if data.get("floor_gate_db") is None else float(data["floor_gate_db"]),  # type: ignore
        )


def _frames_before_split(
    y: np.ndarray, sr: int, cfg: SegmentalConfig
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The gated frame matrix of ``cfg``'s views, its quiet-frame mask and frame power (see
    :func:`_shared_spectrum_views`), before any ``level_split``."""
    table = _view_functions(cfg.hop_length)
    shared: dict[str, np.ndarray] = {}
    quiet = level = None
    if set(cfg.views) & SHARED_SPECTRUM_VIEWS or cfg.gate_db is not None or cfg.pools_by_level:
        shared, quiet, level = _shared_spectrum_views(y, sr, cfg)
    blocks = [shared[view] if view in shared else table[view][0](y, sr) for view in cfg.views]
    n = min(b.shape[1] for b in blocks)
    frames = np.concatenate([b[:, :n] for b in blocks], axis=0).astype(np.float32, copy=False)
    if quiet is not None and quiet[:n].any():
        frames[:, quiet[:n]] = np.nan
    return frames, None if quiet is None else quiet[:n], None if level is None else level[:n]


def _split_by_level(
    frames: np.ndarray, quiet: np.ndarray | None, level: np.ndarray | None, cfg: SegmentalConfig
) -> np.ndarray:
    """Apply ``cfg``'s floor gate and level split to the frames before the split (see :func:`frame_matrix`).

    With a level split, appends the row that says which pool each frame is in (NaN: gated);
    without one, floor-gated frames become NaN (in a copy: the frames may be shared).
    """
    if level is None or quiet is None or not cfg.pools_by_level:
        return frames
    gated = quiet
    if cfg.floor_gate_db is not None:
        gated = quiet | below_floor(level, cfg.floor_gate_db)
        if gated.all():  # nothing above the floor that the gate kept: fall back to the gate alone
            gated = quiet
    if cfg.level_split is None:
        if gated is quiet:
            return frames
        frames = frames.copy()
        frames[:, gated] = np.nan
        return frames
    kept = ~gated
    kept_level = level[kept] if kept.any() else level
    threshold = np.percentile(kept_level, 75) if cfg.level_split == "loud-quarter" else np.median(kept_level)
    code = np.where(gated, np.nan, (level >= threshold).astype(np.float32)).astype(np.float32)
    return np.concatenate([frames, code[None, :]], axis=0)


def frame_matrix(y: np.ndarray, sr: int, config: SegmentalConfig | None = None) -> np.ndarray:
    """Stacked frame features of all views.

    Parameters
    ----------
    y : np.ndarray, shape (n_samples,)
        Preprocessed mono signal at ``config.sample_rate``.

    Returns
    -------
    np.ndarray, shape (n_features, n_frames), float32
        Frame ``t`` is centred on sample ``t * hop_length``. With ``config.gate_db``, frames below
        the gate are NaN in every row (:func:`segment_vectors` leaves them out). With
        ``config.level_split``, one more row last: 1 for a frame at or above the median frame
        power of the kept frames ("loud"), 0 below, NaN when gated; :func:`pool_segments` pools
        the frames of each pool apart (the frames are not copied per pool). ``"loud-quarter"``
        puts the threshold at the 75th percentile; frames below :attr:`SegmentalConfig.floor_gate_db`
        get NaN in that row (and in every row without a level split).
    """
    cfg = config or SegmentalConfig()
    if sr != cfg.sample_rate:
        raise FeatureError(f"expected a signal at {cfg.sample_rate} Hz, got {sr} Hz")
    return _split_by_level(*_frames_before_split(y, sr, cfg), cfg)


def frame_matrices(y: np.ndarray, sr: int, configs: Sequence[SegmentalConfig]) -> list[np.ndarray]:
    """:func:`frame_matrix` for each of ``configs``, computing what they share once.

    Configs with equal :meth:`SegmentalConfig.frame_key` share one matrix, and configs that differ
    only in ``level_split`` or ``floor_gate_db`` share one STFT and frame matrix before the split (a
    fusion of a model pooling all frames and one pooling the louder and quieter frames apart costs
    one feature pass). Configs that read only the shared STFT with the same gate but different
    views (a routed model's router and its experts) share one STFT too, each taking its rows of the
    union of their views (:func:`_shared_frames_before_split`).

    Returns
    -------
    list of np.ndarray, one per config, each exactly ``frame_matrix(y, sr, config)``
    """
    for cfg in configs:
        if sr != cfg.sample_rate:
            raise FeatureError(f"expected a signal at {cfg.sample_rate} Hz, got {sr} Hz")
    base: dict[tuple[object, ...], tuple[np.ndarray, np.ndarray | None, np.ndarray | None]] = {}
    out = []
    for cfg in configs:
        key = cfg.split_free_frame_key()
        if key not in base:
            base.update(_shared_frames_before_split(y, sr, cfg, configs))
        out.append(_split_by_level(*base[key], cfg))
    return out


def _shared_frames_before_split(
    y: np.ndarray, sr: int, cfg: SegmentalConfig, configs: Sequence[SegmentalConfig]
) -> dict[tuple[object, ...], tuple[np.ndarray, np.ndarray | None, np.ndarray | None]]:
    """:func:`_frames_before_split` of ``cfg``, and of every config in ``configs`` that can read
    the same STFT, by :meth:`SegmentalConfig.split_free_frame_key`.

    Configs whose views all come from the shared STFT (:data:`SHARED_SPECTRUM_VIEWS`) and that
    gate alike differ only in which views they stack (e.g. a routed model's router reads the
    experts' views and ``lfbe_7k``): one pass computes the union of their views, and each gets its
    rows, the same values as alone (each view is computed from the same power spectrum and gate).
    """
    group = [c for c in configs if _shares_stft(c, cfg)]
    views = tuple(dict.fromkeys(v for c in group for v in c.views))
    # Any level split or floor gate of the group needs the frame power.
    union = replace(cfg, views=views, level_split="halves" if any(c.pools_by_level for c in group) else None)
    frames, quiet, level = _frames_before_split(y, sr, union)
    if len(group) == 1 or all(c.views == views for c in group):
        return {c.split_free_frame_key(): (frames, quiet, level) for c in group}
    out = {}
    for c in group:
        rows = _rows_within(c, union)
        assert rows is not None  # every config of the group shares the union's STFT
        contiguous = bool(np.all(np.diff(rows) == 1))
        picked = frames[rows[0] : rows[-1] + 1] if contiguous else frames[rows]
        out[c.split_free_frame_key()] = (picked, quiet, level)
    return out


def pool_segments(frames: np.ndarray, bounds: np.ndarray, config: SegmentalConfig) -> np.ndarray:
    """The model's input rows: :func:`segment_vectors` with ``config``'s statistics and columns.

    Returns
    -------
    np.ndarray, shape (n_segments, len(config.vector_names())), float32
        NaN rows for segments without a single frame above the gate.
    """
    if config.level_split is not None:
        vectors = _split_vectors(*_level_sums(frames[:-1], frames[-1], bounds, config.hop_length), config)
    else:
        vectors = segment_vectors(frames, bounds, config.hop_length, config.stats, empty_as_nan=True)
    return _used_columns(vectors, config)


def pool_segments_many(
    matrices: Sequence[np.ndarray], bounds: np.ndarray, configs: Sequence[SegmentalConfig]
) -> list[np.ndarray]:
    """:func:`pool_segments` for each frame matrix and config, as :func:`frame_matrices` returns them.

    A config whose frames are some of the rows of a level-split config's frames before the split
    (its "twin": equal :meth:`SegmentalConfig.split_free_frame_key`, or a subset of its
    shared-STFT views with the same gate, see :func:`_rows_within`) and that has the same floor
    gate is pooled from the split config's sums: without a level split from the sums over the
    kept frames, with the same split from both pools' sums. A fusion of the two (``voxguard-v3``)
    pools its frames once, and a routed model whose router reads the experts' views and more
    (``voxguard-v6``, ``voxguard-v7``) pools the experts' split view from the router's pass. Configs with more
    views go first. The twins' vectors are the same as pooling them alone, to the bit (rows are
    summed independently).
    """
    out: list[np.ndarray | None] = [None] * len(configs)
    for i in sorted(range(len(configs)), key=lambda k: -len(configs[k].views)):
        cfg = configs[i]
        if cfg.level_split is None or out[i] is not None:
            continue
        kept, loud = _level_sums(matrices[i][:-1], matrices[i][-1], bounds, cfg.hop_length)
        n_frames = matrices[i].shape[1]
        for j, other in enumerate(configs):
            rows = _rows_within(other, cfg)
            if out[j] is not None or rows is None or other.floor_gate_db != cfg.floor_gate_db:
                continue  # (a floor gate changes the kept frames)
            if other.level_split is None and matrices[j].shape == (len(rows), n_frames):
                part = kept.rows(rows)
                out[j] = _used_columns(_with_empty_as_nan(part.vectors(other.stats), part.count), other)
            elif other.level_split == cfg.level_split and matrices[j].shape == (len(rows) + 1, n_frames):
                out[j] = _used_columns(_split_vectors(kept.rows(rows), loud.rows(rows), other), other)
    return [v if v is not None else pool_segments(m, bounds, c) for v, m, c in zip(out, matrices, configs, strict=True)]


def _shares_stft(a: SegmentalConfig, b: SegmentalConfig) -> bool:
    """Whether :func:`frame_matrices` computes ``a``'s and ``b``'s frames in one pass: equal
    :meth:`SegmentalConfig.split_free_frame_key`, or views all from the shared STFT
    (:data:`SHARED_SPECTRUM_VIEWS`) with the same rate and gate."""
    if a.split_free_frame_key() == b.split_free_frame_key():
        return True
    same_gate = (a.sample_rate, a.gate_db, a.gate_band_hz) == (b.sample_rate, b.gate_db, b.gate_band_hz)
    return same_gate and set(a.views) | set(b.views) <= SHARED_SPECTRUM_VIEWS


def _rows_within(inner: SegmentalConfig, outer: SegmentalConfig) -> np.ndarray | None:
    """The rows of ``outer``'s frames before any split that hold ``inner``'s frames, or ``None``
    when ``inner`` does not share ``outer``'s STFT (:func:`_shares_stft`) or reads a view that
    ``outer`` does not."""
    if not _shares_stft(inner, outer) or not set(inner.views) <= set(outer.views):
        return None
    table = _view_functions(outer.hop_length)
    start = dict(zip(outer.views, np.cumsum([0, *(len(table[v][1]) for v in outer.views)]), strict=False))
    return np.concatenate([np.arange(start[v], start[v] + len(table[v][1])) for v in inner.views])


@functools.lru_cache(maxsize=64)
def _column_mask(config: SegmentalConfig) -> np.ndarray:
    # Built from every column's name: cached, as scanning pools every segment block with it.
    names = config._all_vector_names()
    mask = np.array([not (n.startswith(("d_", "dd_")) and n.endswith("_mean")) for n in names])
    mask.flags.writeable = False
    return mask


def _used_columns(vectors: np.ndarray, config: SegmentalConfig) -> np.ndarray:
    mask = config.column_mask()
    return vectors if mask is None else np.ascontiguousarray(vectors[:, mask])


def _with_empty_as_nan(vectors: np.ndarray, count: np.ndarray) -> np.ndarray:
    vectors[count == 0] = np.nan
    return vectors


@dataclass(frozen=True)
class _PoolSums:
    """Per-segment sums over one pool of frames: of the frames ``x``, of their squares ``x2``
    (both ``(n_segments, n_features)``, float64) and the frame ``count`` ``(n_segments,)``."""

    x: np.ndarray
    x2: np.ndarray
    count: np.ndarray

    def __sub__(self, other: _PoolSums) -> _PoolSums:
        return _PoolSums(self.x - other.x, self.x2 - other.x2, self.count - other.count)

    def rows(self, index: np.ndarray) -> _PoolSums:
        """The sums of some frame rows (columns here), in ``index`` order."""
        if len(index) == self.x.shape[1] and np.array_equal(index, np.arange(len(index))):
            return self
        return _PoolSums(self.x[:, index], self.x2[:, index], self.count)

    def vectors(self, stats: Sequence[str]) -> np.ndarray:
        """Statistic-major float32 rows as :func:`segment_vectors` (zeros for an empty pool)."""
        safe = np.maximum(self.count, 1.0)[:, None]
        mean = self.x / safe
        out = []
        if "mean" in stats:
            out.append(mean)
        if "std" in stats:
            out.append(np.sqrt(np.maximum(self.x2 / safe - mean * mean, 0.0)))
        return np.hstack(out).astype(np.float32)


def _level_sums(
    base: np.ndarray, pool_code: np.ndarray, bounds: np.ndarray, hop_length: int
) -> tuple[_PoolSums, _PoolSums]:
    """Sums over the kept (finite) frames of ``base`` and over those of them in the pool.

    ``pool_code`` (n_frames,): > 0.5 for a frame in the pool; a float NaN also leaves the frame
    out of the kept ones. For a ``level_split`` frame matrix (see :func:`frame_matrix`) ``base``
    is its frames and ``pool_code`` its last row, the loud frames (NaN: gated, e.g. below the
    floor gate); the quiet pool is the difference of the two.
    """
    first, last, segment_sums = _segment_summer(bounds, hop_length, base.shape[1])
    # float64 sums: E[x^2] - E[x]^2 loses precision in float32.
    x = base.astype(np.float64)
    finite = np.isfinite(x.sum(axis=0))
    if not finite.all() and not np.isnan(x[:, ~finite]).all():
        raise FeatureError("a level split needs frames that miss only whole frames")
    kept = finite & ~np.isnan(pool_code) if pool_code.dtype.kind == "f" else finite
    if not kept.all():
        np.copyto(x, 0.0, where=~kept)
    loud = kept & (pool_code > 0.5)
    x_loud = x * loud

    def counts(pool: np.ndarray) -> np.ndarray:
        whole = np.concatenate([[0], np.cumsum(pool)])
        return (whole[last] - whole[first]).astype(np.float64)

    sum_kept, sum_loud = segment_sums(x), segment_sums(x_loud)
    np.multiply(x, x, out=x)
    np.multiply(x_loud, x_loud, out=x_loud)
    return (
        _PoolSums(sum_kept, segment_sums(x), counts(kept)),
        _PoolSums(sum_loud, segment_sums(x_loud), counts(loud)),
    )


def _split_vectors(kept: _PoolSums, loud: _PoolSums, config: SegmentalConfig) -> np.ndarray:
    """Row blocks in the order of :meth:`SegmentalConfig.frame_names` ("@loud", "@quiet" or "@all",
    "@loud"), statistic-major as :func:`segment_vectors` (every pool's means, then every pool's
    standard deviations). A pool a segment has no frame of gets zeros; only a segment without any
    kept frame is NaN."""
    pools = [loud, kept - loud] if config.level_split == "halves" else [kept, loud]
    parts = [pool.vectors(config.stats) for pool in pools]
    n_segments, n_feat = len(kept.count), kept.x.shape[1]
    n_stats = parts[0].shape[1] // n_feat
    vectors = np.concatenate([p.reshape(n_segments, n_stats, n_feat) for p in parts], axis=2).reshape(n_segments, -1)
    return _with_empty_as_nan(vectors, kept.count)


def segment_vectors(
    frames: np.ndarray,
    bounds: np.ndarray,
    hop_length: int,
    stats: Sequence[str] = ("mean", "std"),
    *,
    empty_as_nan: bool = False,
    frame_mask: np.ndarray | None = None,
) -> np.ndarray:
    """Mean/std of the frames inside each segment, for all segments at once.

    Parameters
    ----------
    frames : np.ndarray, shape (n_features, n_frames)
    bounds : np.ndarray, shape (n_segments, 2)
        Segment start/stop in *samples*; a frame belongs to a segment when its centre does.
    hop_length : int
        Samples between frames.
    empty_as_nan : bool
        A segment without a single finite frame in any feature (all gated, see
        :attr:`SegmentalConfig.gate_db`) gets a NaN row instead of zeros.
    frame_mask : np.ndarray of bool, shape (n_frames,), optional
        Pool only these frames, as if the others were missing (a level pool); the frames may
        then miss only whole frames (NaN in every row).

    Returns
    -------
    np.ndarray, shape (n_segments, n_features * len(stats)), float32
        Statistic-major: all means, then all standard deviations.
    """
    if frame_mask is not None:
        _, pool = _level_sums(frames, np.asarray(frame_mask, dtype=bool), bounds, hop_length)
        vectors = pool.vectors(stats)
        return _with_empty_as_nan(vectors, pool.count) if empty_as_nan else vectors
    n_feat, n_frames = frames.shape
    first, last, segment_sums = _segment_summer(bounds, hop_length, n_frames)
    # float64 sums: E[x^2] - E[x]^2 loses precision in float32.
    x = frames.astype(np.float64)
    bad = ~np.isfinite(x.sum(axis=0))  # frames with any NaN (e.g. F0 when unvoiced, or gated)
    whole_frames = bool(bad.any()) and bool(np.isnan(x[:, bad]).all())
    if not bad.any():
        count = np.broadcast_to((last - first)[:, None].astype(np.float64), (len(first), n_feat))
    elif whole_frames:
        # Whole frames missing (the silence gate): one count per segment.
        x[:, bad] = 0.0
        whole = np.concatenate([[0], np.cumsum(~bad)])
        count = np.broadcast_to((whole[last] - whole[first])[:, None].astype(np.float64), (len(first), n_feat))
    else:  # NaN frames do not count; a segment without any gives 0
        valid = np.isfinite(x)
        x = np.where(valid, x, 0.0)
        count = segment_sums(valid.astype(np.float64))
    safe = np.maximum(count, 1.0)
    mean = segment_sums(x) / safe
    out = []
    if "mean" in stats:
        out.append(mean)
    if "std" in stats:
        np.multiply(x, x, out=x)
        var = segment_sums(x) / safe - mean * mean
        out.append(np.sqrt(np.maximum(var, 0.0)))
    vectors = np.hstack(out).astype(np.float32)
    if empty_as_nan:
        vectors[np.asarray(count).max(axis=1) == 0] = np.nan
    return vectors


def _segment_summer(
    bounds: np.ndarray, hop_length: int, n_frames: int
) -> tuple[np.ndarray, np.ndarray, Callable[[np.ndarray], np.ndarray]]:
    """First and last (exclusive) frame of each segment, and a function summing rows over them.

    The function maps ``(n_rows, n_frames)`` to ``(n_segments, n_rows)``: sums over the stretches
    between consecutive segment boundaries (one reduceat pass), then cumulative sums over those
    few stretches; segments overlap, but no frame is summed twice. Rows are summed independently,
    so stacking rows changes no sum.
    """
    if n_frames == 0:
        raise FeatureError("no frames to pool")
    first, last = segment_frame_ranges(bounds, hop_length, n_frames)
    edges = np.union1d(first, last)
    edges = edges[edges < n_frames]
    lo = np.searchsorted(edges, first)
    hi = np.searchsorted(edges, last)  # a boundary at n_frames maps past the last stretch

    def segment_sums(a: np.ndarray) -> np.ndarray:
        blocks = np.add.reduceat(a, edges, axis=1)  # (n_rows, n_stretches)
        c = np.zeros((a.shape[0], blocks.shape[1] + 1))
        np.cumsum(blocks, axis=1, out=c[:, 1:])
        return (c[:, hi] - c[:, lo]).T  # (n_segments, n_rows)

    return first, last, segment_sums


def segment_frame_ranges(bounds: np.ndarray, hop_length: int, n_frames: int) -> tuple[np.ndarray, np.ndarray]:
    """The frames ``[first, last)`` of each segment: those whose centre lies inside it (at least one).

    Parameters
    ----------
    bounds : np.ndarray, shape (n_segments, 2)
        Segment start/stop in samples.
    hop_length : int
        Samples between frames.
    n_frames : int
        Frames of the signal.

    Returns
    -------
    first, last : np.ndarray of int64, shape (n_segments,)
        ``0 <= first < last <= n_frames``.
    """
    if n_frames == 0:
        raise FeatureError("no frames to crop")
    first = np.clip(np.ceil(bounds[:, 0] / hop_length).astype(np.int64), 0, n_frames - 1)
    last = np.clip(np.ceil(bounds[:, 1] / hop_length).astype(np.int64), first + 1, n_frames)
    return first, last


def segment_crops(frames: np.ndarray, bounds: np.ndarray, hop_length: int, n_frames: int | None = None) -> np.ndarray:
    """The frame sequence of each segment, for models that read frames rather than pooled statistics.

    Parameters
    ----------
    frames : np.ndarray, shape (n_features, n_total_frames)
        From :func:`frame_matrix`; gated frames are NaN.
    bounds : np.ndarray, shape (n_segments, 2)
        Segment start/stop in samples; a frame belongs to a segment when its centre does (as in
        :func:`segment_vectors`).
    hop_length : int
        Samples between frames.
    n_frames : int, optional
        Length of every crop; default: the longest segment's frame count.

    Returns
    -------
    np.ndarray, shape (n_segments, n_features, n_frames), float32
        Segments shorter than ``n_frames`` (and frames beyond a longer one's end) are padded with
        NaN, which frame models treat like gated frames (masked out of their pooling).
    """
    total = frames.shape[1]
    first, last = segment_frame_ranges(bounds, hop_length, total)
    width = int(n_frames if n_frames is not None else (last - first).max())
    index = first[:, None] + np.arange(width)[None, :]
    inside = index < last[:, None]
    # One gather for all segments: (n_features, n_segments, width) -> (n_segments, n_features, width).
    crops = frames[:, np.minimum(index, total - 1)].transpose(1, 0, 2).astype(np.float32, copy=True)
    crops[np.broadcast_to(~inside[:, None, :], crops.shape)] = np.nan
    return crops
