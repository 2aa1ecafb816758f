"""The opt-in forced aligner: a CTC wav2vec2 model places each character of a segment's normalized text in its
audio. `text.py` turns the text into the model's tokens (and back to characters), `ctc.py` is the Viterbi
alignment over the model's emissions (pure numpy), `model.py` loads and batches the model (torch, the engine
process only)."""
