"""What cnnscope knows about ops, independent of where they were recorded (ATen or ONNX)."""
