"""Real speech: IEMOCAP from the raw release, features from wav files, speech-only inference
(batch, causal and live), export to TorchScript and ONNX. See docs/method.md, section 5.

Modules: :mod:`~bridging.speech.audio` (reading and resampling wav),
:mod:`~bridging.speech.extractors` (openSMILE and HuBERT/wav2vec2 extractors, their saved
specs, parallel and resumable extraction), :mod:`~bridging.speech.iemocap` (the raw release
reader behind ``bridging-data prepare-iemocap``), :mod:`~bridging.speech.inference`
(``SpeechModel``, ``Session``, ``bridging-predict-audio``), :mod:`~bridging.speech.export`
(``bridging-export``), :mod:`~bridging.speech.testing` (a fake release for tests).
"""
