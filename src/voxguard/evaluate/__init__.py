"""Evaluation: metrics (EER, minDCF, Cllr, ...) and reports (HTML/Markdown with plots)."""
