"""Training-time augmentation policies: a random chain of degradations per example.

A policy draws, per example and from a seed, which degradations to apply and their parameters,
and applies them in the order a recording chain would: the room and its noise first (reverb,
additive noise), then the device and transmission (clipping, band-limit, resampling, telephone,
codec, packet loss). Both classes are degraded alike, so the recording chain stops being a
label shortcut (in DEV every lossy-coded and every narrow-band clip is real).

``POLICIES["v1"]`` is the policy the first shipped model was trained with (one of four kinds);
``POLICIES["chain"]`` is the default (documented in docs/robustness.md).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from voxguard.augment import channel, codecs, noise, rawboost
from voxguard.errors import VoxguardError

Step = Callable[[np.ndarray, int, np.random.Generator, Sequence[np.ndarray]], tuple[np.ndarray, str]]

# Stage of each kind: lower stages happen first in a real recording chain.
_STAGE = {
    "reverb": 0,
    "noise": 1,
    "babble": 1,
    "babble_low": 1,
    "music": 1,
    "rawboost": 2,
    "clip": 3,
    "band": 4,
    "resample": 4,
    "telephone": 5,
    "codec": 5,
    "packet_loss": 6,
}


def _seed(rng: np.random.Generator) -> int:
    return int(rng.integers(2**31))


def _reverb(y, sr, rng, _bank):
    rt60 = float(rng.uniform(0.2, 0.9))
    return channel.reverb(y, sr, rt60, seed=_seed(rng)), f"reverb RT60 {rt60:.1f} s"


def _noise(y, sr, rng, _bank):
    snr = float(rng.uniform(5, 30))
    colour = str(rng.choice(noise.COLOURS))
    return noise.add_noise(y, snr, seed=_seed(rng), colour=colour), f"{colour} noise {snr:.0f} dB"


def _babble(y, sr, rng, bank, snr_range=(5, 25)):
    if not bank:  # no speech to make babble from: fall back to pink noise
        return _noise(y, sr, rng, bank)
    snr = float(rng.uniform(*snr_range))
    talkers = int(rng.integers(3, 9))
    b = noise.babble(bank, len(y), talkers=talkers, seed=_seed(rng))
    return noise.mix_at_snr(y, b, snr), f"babble ({talkers} talkers) {snr:.0f} dB"


def _babble_low(y, sr, rng, bank):
    # The lower half of babble's SNR range, for a babble expert of its own (voxguard-v7).
    return _babble(y, sr, rng, bank, snr_range=(5, 15))


def _music(y, sr, rng, _bank):
    snr = float(rng.uniform(5, 25))
    return noise.mix_at_snr(y, noise.music_like(len(y), sr, seed=_seed(rng)), snr), f"music {snr:.0f} dB"


def _rawboost(y, sr, rng, _bank):
    algorithm = str(rng.choice(["lnl", "isd", "ssi", "lnl+isd"]))
    return rawboost.apply(y, sr, algorithm, seed=_seed(rng)), f"rawboost {algorithm}"


def _clip(y, sr, rng, _bank):
    fraction = float(rng.uniform(0.2, 0.6))
    return channel.clip(y, fraction), f"clipped at {fraction:.0%} of peak"


def _band(y, sr, rng, _bank):
    cutoff = float(rng.choice([3_400, 4_000, 5_500, 7_000]))
    return channel.band_limit(y, sr, cutoff), f"band_limit {cutoff:.0f} Hz"


def _resample(y, sr, rng, _bank):
    rates = [(48_000, 8_000), (44_100, 11_025), (22_050, 8_000), (32_000, 12_000)][int(rng.integers(4))]
    return channel.resample_chain(y, sr, rates), "resampled " + "→".join(f"{r / 1000:g}k" for r in rates)


def _telephone(y, sr, rng, _bank):
    codec = str(rng.choice(["ulaw", "alaw", "amr_nb", "none"]))
    bitrate = int(rng.choice(codecs.AMR_NB_RATES))
    label = f"amr_nb {bitrate / 1000:g} kbit/s" if codec == "amr_nb" else codec
    return codecs.telephone(y, sr, codec, bitrate=bitrate), f"telephone {label}"


def _codec(y, sr, rng, _bank):
    codec = str(rng.choice(["mp3", "aac", "opus", "vorbis"]))
    if codec == "vorbis":
        quality = float(rng.uniform(0.2, 0.9))
        return codecs.vorbis_roundtrip(y, sr, quality), f"vorbis q{quality:.1f}"
    choices = {"mp3": [32, 48, 64, 96, 128], "aac": [32, 48, 64, 96], "opus": [12, 16, 24, 32, 48]}[codec]
    kbps = int(rng.choice(choices))
    return codecs.codec_roundtrip(y, sr, codec, kbps * 1000), f"{codec} {kbps} kbit/s"


def _packet_loss(y, sr, rng, _bank):
    rate = float(rng.uniform(0.01, 0.05))
    return channel.packet_loss(y, sr, rate, seed=_seed(rng)), f"packet loss {rate:.0%}"


STEPS: dict[str, Step] = {
    "reverb": _reverb,
    "noise": _noise,
    "babble": _babble,
    "babble_low": _babble_low,
    "music": _music,
    "rawboost": _rawboost,
    "clip": _clip,
    "band": _band,
    "resample": _resample,
    "telephone": _telephone,
    "codec": _codec,
    "packet_loss": _packet_loss,
}


@dataclass(frozen=True)
class AugmentPolicy:
    """Draws ``min_steps``-``max_steps`` distinct kinds (weighted) and applies them in chain order.

    Parameters
    ----------
    name : str
    weights : dict of kind -> weight
        Relative probability of each kind (see :data:`STEPS`).
    min_steps, max_steps : int
    seed_salt : int
        Mixed into every example's seed when non-zero, so that two policies draw independent
        copies of the same clip (experts trained on them then err differently, and their
        average gains more).
    """

    name: str
    weights: tuple[tuple[str, float], ...]
    min_steps: int = 1
    max_steps: int = 2
    seed_salt: int = 0

    def describe(self) -> str:
        total = sum(w for _, w in self.weights)
        kinds = ", ".join(f"{k} {w / total:.0%}" for k, w in self.weights)
        steps = f"{self.min_steps}" if self.min_steps == self.max_steps else f"{self.min_steps}-{self.max_steps}"
        return f"policy {self.name!r}: {steps} distinct degradations per example, drawn from {kinds}"

    def draw(self, rng: np.random.Generator) -> list[str]:
        """The kinds to apply to one example, in recording-chain order."""
        kinds = [k for k, _ in self.weights]
        p = np.array([w for _, w in self.weights], dtype=np.float64)
        n_steps = int(rng.integers(self.min_steps, self.max_steps + 1))
        chosen = rng.choice(len(kinds), size=min(n_steps, len(kinds)), replace=False, p=p / p.sum())
        return sorted((kinds[int(i)] for i in chosen), key=_STAGE.__getitem__)

    def __call__(
        self, y: np.ndarray, sr: int, *, seed: int, babble_sources: Sequence[np.ndarray] = ()
    ) -> tuple[np.ndarray, str]:
        """Degrade ``y``; returns ``(degraded, description)``. Same seed, same result."""
        rng = np.random.default_rng((seed, self.seed_salt) if self.seed_salt else seed)
        out, done = y.astype(np.float32), []
        for kind in self.draw(rng):
            out, how = STEPS[kind](out, sr, rng, babble_sources)
            done.append(how)
        return out, " + ".join(done)


def random_degradation(y: np.ndarray, sr: int, *, seed: int) -> tuple[np.ndarray, str]:
    """One degradation of the ``v1`` policy (voxguard-v1's training): returns ``(y, description)``.

    Uniform over kinds: band-limit to 3.4/4/5.5 kHz; Opus 12-48 kbit/s; MP3 32-128 kbit/s;
    white or pink noise at 10-30 dB SNR. The same draws and parameters as when v1 was trained.
    """
    rng = np.random.default_rng(seed)
    kind = rng.choice(["band", "opus", "mp3", "noise"])
    if kind == "band":
        cutoff = float(rng.choice([3_400, 4_000, 5_500]))
        return channel.band_limit(y, sr, cutoff), f"band_limit {cutoff:.0f} Hz"
    if kind == "opus":
        rate = int(rng.choice([12_000, 16_000, 24_000, 32_000, 48_000]))
        return codecs.codec_roundtrip(y, sr, "opus", rate), f"opus {rate // 1000} kbit/s"
    if kind == "mp3":
        rate = int(rng.choice([32_000, 64_000, 128_000]))
        return codecs.codec_roundtrip(y, sr, "mp3", rate), f"mp3 {rate // 1000} kbit/s"
    snr = float(rng.uniform(10, 30))
    colour = str(rng.choice(["white", "pink"]))
    return _v1_noise(y, snr, seed=seed, colour=colour), f"{colour} noise {snr:.0f} dB"


def _v1_noise(y: np.ndarray, snr_db: float, *, seed: int, colour: str) -> np.ndarray:
    # v1's own noise (pink without DC removal, float64 mixing); noise.add_noise differs in rounding.
    rng = np.random.default_rng(seed)
    n = rng.standard_normal(len(y))
    if colour == "pink":
        spec = np.fft.rfft(n)
        spec[1:] /= np.sqrt(np.arange(1, len(spec)))
        n = np.fft.irfft(spec, n=len(y))
    p_signal = float(np.mean(np.square(y, dtype=np.float64))) + 1e-20
    p_noise = float(np.mean(np.square(n))) + 1e-20
    n *= np.sqrt(p_signal / p_noise / 10 ** (snr_db / 10))
    return (y + n).astype(np.float32)


class _V1Policy:
    name = "v1"

    def describe(self) -> str:
        return (
            "policy 'v1': one degradation per example, uniform over band-limit 3.4/4/5.5 kHz, "
            "Opus 12-48 kbit/s, MP3 32-128 kbit/s, white/pink noise 10-30 dB SNR"
        )

    def __call__(
        self, y: np.ndarray, sr: int, *, seed: int, babble_sources: Sequence[np.ndarray] = ()
    ) -> tuple[np.ndarray, str]:
        return random_degradation(y, sr, seed=seed)


_CHAIN_WEIGHTS = (
    ("codec", 3.0),
    ("babble", 2.0),
    ("noise", 1.5),
    ("music", 1.0),
    ("reverb", 1.5),
    ("telephone", 1.0),
    ("band", 1.0),
    ("resample", 0.5),
    ("clip", 0.5),
    ("packet_loss", 0.5),
    ("rawboost", 1.0),
)


def _reweighted(weights: tuple[tuple[str, float], ...], **changes: float) -> tuple[tuple[str, float], ...]:
    return tuple((kind, changes.get(kind, w)) for kind, w in weights)


POLICIES: dict[str, AugmentPolicy | _V1Policy] = {
    # The policy voxguard-v1 was trained with (kept exactly as it was).
    "v1": _V1Policy(),
    "chain": AugmentPolicy("chain", _CHAIN_WEIGHTS, 1, 2),
    # "chain" with codecs and babble drawn more often (an experiment towards issue 8's
    # MP3-64k and babble-10dB targets; docs/robustness.md).
    "chain-cb": AugmentPolicy("chain-cb", _reweighted(_CHAIN_WEIGHTS, codec=5.0, babble=4.0), 1, 2),
    # One kind each, for condition experts and the router of a routed model
    # (voxguard.models.routing): "other" is every kind of "chain" but codecs, babble and telephone.
    "only-codec": AugmentPolicy("only-codec", (("codec", 1.0),), 1, 1),
    "only-babble": AugmentPolicy("only-babble", (("babble", 1.0),), 1, 1),
    # Babble at 5-15 dB SNR, drawn independently of "only-babble" (voxguard-v7's third babble expert).
    "only-babble-low": AugmentPolicy("only-babble-low", (("babble_low", 1.0),), 1, 1, seed_salt=1),
    "only-telephone": AugmentPolicy("only-telephone", (("telephone", 1.0),), 1, 1),
    "only-other": AugmentPolicy(
        "only-other", tuple((k, w) for k, w in _CHAIN_WEIGHTS if k not in ("codec", "babble", "telephone")), 1, 1
    ),
}
DEFAULT_POLICY = "chain"


def get_policy(name: str) -> AugmentPolicy | _V1Policy:
    if name not in POLICIES:
        raise VoxguardError(f"unknown augmentation policy {name!r}; choose from {', '.join(POLICIES)}")
    return POLICIES[name]
