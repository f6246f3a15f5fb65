"""Inference and deployment: the Predictor, file prediction, ONNX, exports."""
