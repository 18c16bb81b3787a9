"""Keras model -> TFLite flatbuffer at one of four quantization levels.

- float32: plain conversion, the reference.
- float16: weights stored as float16, computed in float32 on the CPU.
- dynamic: weights int8, activations quantized on the fly (float input/output).
- int8:    full-integer: uint8 input, integer kernels only (TFLITE_BUILTINS_INT8), calibrated
           on a representative set drawn stratified from the TRAINING split; what the Edge TPU
           compiler accepts.
"""
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

QUANT_LEVELS = ("float32", "float16", "dynamic", "int8")


def representative_rows(rows, n=200, seed=0):
    """n training rows drawn stratified by label (never test rows)."""
    train = [r for r in rows if r["subset"] == "train"]
    if n >= len(train):
        return train
    from sklearn.model_selection import train_test_split
    labels = [r["label_id"] for r in train]
    picked, _ = train_test_split(train, train_size=n, random_state=seed, stratify=labels)
    return picked


def _converter(model, workdir):
    import keras
    import tensorflow as tf
    # Keras 3 models are exported as a SavedModel with one endpoint of a fixed batch of 1:
    # the Pi classifies one image at a time, and static shapes suit the Edge TPU compiler.
    archive = keras.export.ExportArchive()
    archive.track(model)
    shape = (1, *model.input_shape[1:])
    archive.add_endpoint("serve", lambda x: model(x, training=False),
                         input_signature=[tf.TensorSpec(shape, tf.float32, name="image")])
    archive.write_out(str(workdir), verbose=False)
    return tf.lite.TFLiteConverter.from_saved_model(str(workdir), signature_keys=["serve"])


def with_features(model):
    """The CNN with a second output, the input of its last layer (its penultimate features,
    after ReLU: never negative, so they fit uint8 like the probabilities). The device's
    out-of-domain score reads them; they cost nothing, being computed anyway."""
    import keras
    return keras.Model(model.inputs, [model.output, model.layers[-1].input], name=model.name)


def convert_model(model, quant, calibration_images=None, output_uint8=True, features=False):
    """Return the .tflite bytes. calibration_images: uint8 [n,s,s,3], needed for int8.
    features: also output the penultimate features (CNNs; see with_features)."""
    if quant not in QUANT_LEVELS:
        raise ValueError(f"unknown quantization {quant}; one of {', '.join(QUANT_LEVELS)}")
    if features:
        model = with_features(model)
    with tempfile.TemporaryDirectory() as tmp:
        conv = _converter(model, Path(tmp) / "saved_model")
        _configure(conv, quant, calibration_images, output_uint8)
        return conv.convert()


def _configure(conv, quant, calibration_images, output_uint8):
    import tensorflow as tf
    if quant == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif quant == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif quant == "int8":
        if calibration_images is None or len(calibration_images) == 0:
            raise ValueError("int8 needs calibration images from the training split")

        def representative():
            for im in calibration_images:
                yield [im[None].astype(np.float32)]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.uint8
        # Softmax probabilities fit uint8; pooled features may be negative (swish), so int8.
        conv.inference_output_type = tf.uint8 if output_uint8 else tf.int8


def compile_edgetpu(tflite_path, out_dir):
    """Run edgetpu_compiler when it is installed; returns the _edgetpu.tflite path or None."""
    exe = shutil.which("edgetpu_compiler")
    if exe is None:
        return None
    subprocess.run([exe, "-s", "-o", str(out_dir), str(tflite_path)], check=True,
                   stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out = Path(out_dir) / (Path(tflite_path).stem + "_edgetpu.tflite")
    return out if out.is_file() else None
