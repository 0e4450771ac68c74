"""Audio input: decode (content-sniffed), downmix, resample, canonical preprocessing, segmenting."""
