"""Degradations of speech recordings: for training on both classes alike, and for robustness tests.

In the DEV corpus every lossy-coded and every narrow-band clip is real; a detector that learns
"compressed or band-limited = real" fails on real-world fakes, which are usually compressed.
Every function here is pure and seeded: mono float32 ``(y, sr, ...) -> y`` at the same rate and
length.

- :mod:`~voxguard.augment.noise`: white/pink/brown noise, babble, music-like sound at an SNR;
- :mod:`~voxguard.augment.codecs`: MP3, AAC, Opus, Vorbis, AMR-NB, G.711 and the telephone channel;
- :mod:`~voxguard.augment.channel`: band-limit, gain, clipping, reverberation, resampling chains,
  packet loss;
- :mod:`~voxguard.augment.rawboost`: RawBoost's convolutive, impulsive and stationary noise
  (``rawboost.apply(y, sr, "lnl+isd")``);
- :mod:`~voxguard.augment.policy`: random chains of the above for training.
"""

from voxguard.augment.channel import band_limit, clip, gain, packet_loss, resample_chain, reverb
from voxguard.augment.codecs import CODECS, codec_roundtrip, encode, telephone, vorbis_roundtrip
from voxguard.augment.noise import add_noise, babble, coloured_noise, mix_at_snr, music_like, snr_db
from voxguard.augment.policy import DEFAULT_POLICY, POLICIES, AugmentPolicy, get_policy, random_degradation

__all__ = [
    "CODECS",
    "DEFAULT_POLICY",
    "POLICIES",
    "AugmentPolicy",
    "add_noise",
    "babble",
    "band_limit",
    "clip",
    "codec_roundtrip",
    "coloured_noise",
    "encode",
    "gain",
    "get_policy",
    "mix_at_snr",
    "music_like",
    "packet_loss",
    "random_degradation",
    "resample_chain",
    "reverb",
    "snr_db",
    "telephone",
    "vorbis_roundtrip",
]
