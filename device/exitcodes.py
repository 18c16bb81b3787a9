"""Exit codes of the `alledge` command, one meaning each (documented in the README)."""

OK = 0
SOME_FAILED = 1      # data problems found, or some inputs of a batch could not be classified
USAGE = 2            # bad flags, unusable input path, or a missing extra
BAD_BUNDLE = 3       # bundle missing, unknown format version, missing file, hash mismatch
NO_CAMERA = 4        # camera could not be opened or stopped delivering frames
NO_DELEGATE = 5      # --delegate edgetpu without the library or the accelerator
NO_WEIGHTS = 6       # pretrained weights needed but not available offline
