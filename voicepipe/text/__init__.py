"""Text: incremental sentence segmentation and speech normalization."""
