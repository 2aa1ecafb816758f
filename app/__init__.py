"""Streaming text-to-speech API: FastAPI in front of a vLLM speech-token model and the NeuCodec decoder."""

__version__ = "0.1.0"
