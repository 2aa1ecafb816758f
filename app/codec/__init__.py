"""NeuCodec for the service: our lean decoder (exact padded batching), the encoder for voice cloning, loading
of the published weights, and the runtime (CUDA graphs / torch.compile / eager).

Modules: `config` (sizes), `fsq`, `vocos` + `istft` + `masking` + `decoder` (decode path, no transformers),
`acoustic` + `semantic` + `encoder` (encode path), `pretrained` (loading), `checkpoint` (`tts-make-codec`),
`batching` (pure bucket/batch rules), `graphs` (CUDA graphs), `runtime` (`CodecRuntime`).
"""
