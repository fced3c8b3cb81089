"""Make the TFLite test models in this directory (run from the repository root, needs tensorflow):

    python3 tests/data/tflite/make_models.py

cnn.tflite: a small CNN, input float32 [1, 32, 32, 3] -> 3 Conv2D (8, 16, 16 filters, ReLU) ->
GlobalAveragePooling2D -> Dense(32, ReLU) -> Dense(10). Every op is one XNNPACK takes.
cnn_cumsum.tflite: the same CNN with a CUMSUM over the 10 logits at the end, an op XNNPACK does not
take, so the default delegate covers all nodes but that one (partial placement).
edgetpu_custom_op.tflite: tests/fuzz/data/tiny.tflite with its one operator turned into the custom
op `edgetpu-custom-op` (what edgetpu_compiler emits), rewritten with TensorFlow's
tensorflow.lite.tools.flatbuffer_utils: a model that needs the Edge TPU delegate to load.
Kept as files so the tests do not import TensorFlow (several seconds) to make them.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import tensorflow as tf

HERE = Path(__file__).resolve().parent


def make(cumsum: bool) -> tf.keras.Model:
    inputs = tf.keras.Input((32, 32, 3), batch_size=1)
    x = inputs
    for filters, stride in ((8, 1), (16, 2), (16, 2)):
        x = tf.keras.layers.Conv2D(filters, 3, strides=stride, padding="same", activation="relu")(x)
    x = tf.keras.layers.GlobalAveragePooling2D()(x)
    x = tf.keras.layers.Dense(32, activation="relu")(x)
    x = tf.keras.layers.Dense(10)(x)
    if cumsum:
        x = tf.keras.layers.Lambda(lambda t: tf.math.cumsum(t, axis=-1))(x)
    return tf.keras.Model(inputs, x)


def make_edgetpu_custom_op() -> None:
    from tensorflow.lite.tools import flatbuffer_utils

    model = flatbuffer_utils.read_model(str(HERE.parents[1] / "fuzz" / "data" / "tiny.tflite"))
    for code in model.operatorCodes:
        code.builtinCode = code.deprecatedBuiltinCode = 32  # BuiltinOperator.CUSTOM
        code.customCode = b"edgetpu-custom-op"
    flatbuffer_utils.write_model(model, str(HERE / "edgetpu_custom_op.tflite"))


def main() -> None:
    tf.random.set_seed(0)
    for name, cumsum in (("cnn.tflite", False), ("cnn_cumsum.tflite", True)):
        converted = tf.lite.TFLiteConverter.from_keras_model(make(cumsum)).convert()
        (HERE / name).write_bytes(converted)
        print(name, len(converted))
    make_edgetpu_custom_op()


if __name__ == "__main__":
    main()
