"""Development tools that tests and benchmarks share: the dev vLLM backend and its tiny LM, the fake vLLM, and a
harness that runs the app on a loopback port with a stand-in codec and normalizer."""
