"""Feature extraction: pure, vectorised functions ``(y, sr, **params) -> np.ndarray``.

Conventions
-----------
- Input ``y``: mono float32, shape ``(n_samples,)``; ``sr`` in Hz.
- Frame-level features return ``(n_features, n_frames)`` float32 (librosa's layout), frames on the
  grid of :func:`voxguard.features.framing.frame_signal` with ``center=True``.
- Utterance-level vectors come from :mod:`voxguard.features.pooling`.
"""
