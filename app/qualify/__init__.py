"""`tts-qualify`: what an operator runs in the first hour with the real weights on their GPU.

One module per step, each usable alone:

- `assumptions`: the model's files (tokenizer, config, generation config, codec) against what the service assumes
  (app/prompts.py: the speech-token range, the end-of-speech token, the prompt format; 50 tokens a second).
- `backend`: the running vLLM: the served model, its token ids, a short generation of speech tokens.
- `render`: a fixed contact-centre set through the running service's HTTP API, at 24 kHz and 8 kHz mu-law.
- `asr`: optional intelligibility: character error rate per language with an ASR model the operator names.
- `sweep`: concurrency levels until p95 time to first audio misses a target or a listener hears an underrun;
  streams per GPU and cost per call-hour from tools/capacity.py's model.
- `report`: the listening folder's index.html and report.json.
- `cli`: the command.
"""
