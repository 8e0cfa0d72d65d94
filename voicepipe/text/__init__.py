"""Text: incremental sentence segmentation and speech normalization."""

from __future__ import annotations

from voicepipe.text.sentences import Chunking, SentenceBuffer, split_sentences
from voicepipe.text.speech import SpeechNormalizer, to_speech

__all__ = ["Chunking", "SentenceBuffer", "SpeechNormalizer", "split_sentences", "to_speech"]
