"""Inference runtimes, imported only in the bench child: onnxruntime and the TFLite interpreter
(ai-edge-litert, else tflite-runtime). Each model offers input_names(), make_runner(feeds) and
outputs(values); ``choose.open_model`` picks one for an artifact."""
