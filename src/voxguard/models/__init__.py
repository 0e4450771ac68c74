"""Models: detectors trained on features. Training code imports torch/scikit-learn lazily;
inference of shipped models goes through ONNX Runtime only."""
