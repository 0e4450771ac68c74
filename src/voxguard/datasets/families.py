"""Generator families: which fakes count as "the same kind of generator" for leave-one-family-out.

The vocabulary follows the DEV corpus manifest (``hifigan``, ``melgan``, ``waveglow``,
``tacotron2``, ``sps_world``, ...), so families line up across corpora where the generators do.

Rules for names found in folder names (WaveFake vocoder folders, MLAAD model folders)
--------------------------------------------------------------------------------------
:func:`family_from_name` lower-cases the name, turns ``-``, space and ``.`` into ``_`` and returns
the family of the **first** rule in :data:`FAMILY_RULES` whose pattern occurs in it. Acoustic
models and end-to-end systems come before vocoders, because a name such as
``conformer_fastspeech2_pwg`` names the acoustic model first and the family of a TTS system is
that of its acoustic model (as in the DEV corpus: a TTS that ends in HiFi-GAN shares its
acoustic model's family). Where no rule matches, the normalised name itself is the family, so
an unknown generator becomes a family of its own rather than silently joining another.

Notable choices:

- ``xtts`` and ``your_tts`` are families of their own, although both build on VITS-like
  decoders, because they are distinct, widely deployed zero-shot cloning systems.
- ``mms_tts`` (Meta MMS) and Coqui's ``jenny`` voice are VITS models and map to ``vits``.
- ``tacotron2`` stays apart from ``tacotron`` (the DEV corpus separates them); ``capacitron``
  (a Tacotron variant) maps to ``tacotron``.
- every MelGAN variant (multi-band, full-band, large, universal) maps to ``melgan``.

ASVspoof 2019 LA attacks (A01-A19)
----------------------------------
:data:`ASVSPOOF2019_ATTACKS` gives each attack id its type (``tts``, ``vc``, ``tts_vc``) and a
family named after its waveform generator, from the system descriptions in the ASVspoof 2019
database paper (Wang et al., *Computer Speech & Language* 64, 2020, Table 1). A16 and A19 are
the same systems as A04 and A06 and share their families.
"""

from __future__ import annotations

import re

__all__ = ["ASVSPOOF2019_ATTACKS", "FAMILY_RULES", "family_from_name", "normalise_name"]

#: (substring, family), checked in order on the normalised name.
FAMILY_RULES: tuple[tuple[str, str], ...] = (
    # zero-shot / end-to-end systems
    ("xtts", "xtts"),
    ("your_tts", "yourtts"),
    ("yourtts", "yourtts"),
    ("tortoise", "tortoise"),
    ("bark", "bark"),
    ("speecht5", "speecht5"),
    ("parler", "parler_tts"),
    ("styletts", "styletts"),
    ("openvoice", "openvoice"),
    ("metavoice", "metavoice"),
    ("whisperspeech", "whisperspeech"),
    ("chattts", "chattts"),
    ("f5_tts", "f5_tts"),
    ("mms_tts", "vits"),
    ("vits", "vits"),
    ("jenny", "vits"),
    # acoustic models
    ("capacitron", "tacotron"),
    ("forwardtacotron", "forwardtacotron"),
    ("forward_tacotron", "forwardtacotron"),
    ("tacotron2", "tacotron2"),
    ("tacotron_2", "tacotron2"),
    ("tacotron", "tacotron"),
    ("glow_tts", "glowtts"),
    ("glowtts", "glowtts"),
    ("fast_pitch", "fastpitch"),
    ("fastpitch", "fastpitch"),
    ("fastspeech", "fastspeech"),
    ("speedy_speech", "speedy_speech"),
    ("overflow", "overflow"),
    ("neural_hmm", "neural_hmm"),
    ("align_tts", "align_tts"),
    ("deepvoice3", "deepvoice3"),
    ("dctts", "dctts"),
    ("transformer", "transformer"),
    ("grad_tts", "grad_tts"),
    # vocoders
    ("hifigan", "hifigan"),
    ("hifi_gan", "hifigan"),
    ("bigvgan", "bigvgan"),
    ("melgan", "melgan"),
    ("parallel_wavegan", "parallel_wavegan"),
    ("parallel_wave_gan", "parallel_wavegan"),
    ("pwg", "parallel_wavegan"),
    ("waveglow", "waveglow"),
    ("wavegrad", "wavegrad"),
    ("diffwave", "diffwave"),
    ("univnet", "univnet"),
    ("wavernn", "wavernn"),
    ("lpcnet", "lpcnet"),
    ("wavenet", "wavenet"),
    ("griffin", "griffin_lim"),
    ("world", "sps_world"),
)

#: ASVspoof 2019 LA attack id -> (attack type, family of the waveform generator).
ASVSPOOF2019_ATTACKS: dict[str, tuple[str, str]] = {
    "A01": ("tts", "wavenet"),  # NN acoustic model + WaveNet vocoder
    "A02": ("tts", "sps_world"),  # NN acoustic model + WORLD
    "A03": ("tts", "sps_world"),  # FF NN + WORLD (Merlin)
    "A04": ("tts", "concatenative"),  # unit selection (MaryTTS)
    "A05": ("vc", "sps_world"),  # VAE VC + WORLD
    "A06": ("vc", "spectral_filtering"),  # GMM-UBM VC, spectral filtering
    "A07": ("tts", "sps_world"),  # NN + WORLD + GAN post-filter
    "A08": ("tts", "nsf"),  # neural source-filter vocoder
    "A09": ("tts", "vocaine"),  # LSTM + Vocaine vocoder
    "A10": ("tts", "wavernn"),  # Tacotron 2 + WaveRNN
    "A11": ("tts", "griffin_lim"),  # Tacotron 2 + Griffin-Lim
    "A12": ("tts", "wavenet"),  # RNN + WaveNet
    "A13": ("tts_vc", "concatenative"),  # unit selection + waveform filtering VC
    "A14": ("tts_vc", "straight"),  # TTS + VC with STRAIGHT
    "A15": ("tts_vc", "wavenet"),  # TTS + VC with speaker-dependent WaveNet
    "A16": ("tts", "concatenative"),  # = A04
    "A17": ("vc", "waveform_filtering"),  # VAE VC + waveform filtering
    "A18": ("vc", "mfcc_vocoder"),  # i-vector/PLDA VC, MFCC vocoder
    "A19": ("vc", "spectral_filtering"),  # = A06
}


def normalise_name(name: str) -> str:
    """Lower-case, with runs of ``-``, space and ``.`` turned into ``_``."""
    return re.sub(r"[-\s.]+", "_", name.strip().lower())


def family_from_name(name: str) -> str:
    """Family of a generator given its (folder or model) name; see the module docstring.

    Examples
    --------
    >>> family_from_name("tts_models_multilingual_multi-dataset_xtts_v2")
    'xtts'
    >>> family_from_name("ljspeech_hifiGAN")
    'hifigan'
    >>> family_from_name("ljspeech_multi_band_melgan")
    'melgan'
    >>> family_from_name("some_new_model")
    'some_new_model'
    """
    norm = normalise_name(name)
    for pattern, family in FAMILY_RULES:
        if pattern in norm:
            return family
    return norm or "unknown"
