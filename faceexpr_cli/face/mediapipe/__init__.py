"""MediaPipe's face models without MediaPipe: BlazeFace anchors and decoding, the face-mesh crop, the 68-point map
and head pose, as plain numpy around any runner that executes the ``.tflite`` graphs (fx's torch interpreter by
default, Google's LiteRT as the reference). The backend that puts them together is
``faceexpr_cli.face.backends.mediapipe_backend``."""
