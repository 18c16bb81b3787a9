"""alledge.device: what runs on the Raspberry Pi. Never imports TensorFlow or the desktop packages."""

CLASSES = ("Benign", "Early", "Pre", "Pro")  # label order: Benign 0, Early 1, Pre 2, Pro 3
