"""bridging: multimodal emotion recognizers to speech-only ones."""

__version__ = "0.1.0"
