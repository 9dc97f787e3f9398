"""TensorFlow's start-up lines, kept out of the user's terminal in a parent process.

A parent keeps TensorFlow out of its own process, but a user's module that imports Keras
at its top (``import keras``) brings it in when the parent loads the module to learn the
names it registers; TensorFlow's C++ libraries then print their start-up lines (oneDNN,
CUDA drivers, CPU instructions) straight to file descriptor 2, past Python and past
``TF_CPP_MIN_LOG_LEVEL``. :func:`kept_out` catches what is written to it meanwhile and
writes back everything but those lines (a warning of the user's module stays).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile

# absl's C++ log lines (I1206 17:10:02.317109 17316 port.cc:153] ..., or I0000 before its
# set-up), and the two fixed texts TensorFlow prints beside them.
STARTUP = re.compile(r"^(?:[IW]\d{4} [\d:. ]+\s*\d+ [\w./-]+\.cc:\d+\] |WARNING: All log messages before "
                     r"absl::InitializeLog\(\) is called are written to STDERR|To enable the following "
                     r"instructions: .* rebuild TensorFlow with the appropriate compiler flags\.)")


@contextlib.contextmanager
def kept_out():
    """Within it, file descriptor 2 goes to a temporary file; at its end, what was written
    there, but TensorFlow's start-up lines, goes to the real one. Nothing is caught once
    TensorFlow is loaded (its start-up is over)."""
    if "tensorflow" in sys.modules:
        yield
        return
    sys.stderr.flush()
    real = os.dup(2)
    with tempfile.TemporaryFile() as caught:
        os.dup2(caught.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(real, 2)
            os.close(real)
            caught.seek(0)
            kept = [line for line in caught.read().decode(errors="replace").splitlines(keepends=True)
                    if not STARTUP.match(line)]
            if kept:
                os.write(2, "".join(kept).encode())
