"""ONNX models: emitted as kernel-contract C++, compiled with Clad, checked and timed."""
