"""Audio-driven expression (seed 003): speech -> per-frame expression -> landmark motion -> animated portrait.

``mel`` (log-mel features in torch), ``shapes`` (pose-normalised landmarks, neutral face, PCA basis), ``clips``
(per-clip targets and audio windows, cached), ``training`` (`fx train audio2expr`), ``predict`` (a trained run,
torch or ONNX Runtime), ``speech`` (`fx animate --driving speech.wav`), ``evaluate`` (`fx audio2expr eval`) and
``emotion`` (`fx train emotion-adding`, alpha / ortho blending). See docs/audio.md.
"""
