"""The speech service: text -> prompt -> backend speech tokens -> stitched audio, each step its own module."""
