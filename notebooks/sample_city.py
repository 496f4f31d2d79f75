"""The real `civica` binary (path in $CIVICA_BIN), as the notebook tests run it."""

import os
import subprocess

CIVICA = os.environ.get("CIVICA_BIN", "civica")


def civica(*args: str) -> str:
    """Runs `civica ARGS…` and returns its standard output; fails on a non-zero exit."""
    done = subprocess.run([CIVICA, *args], check=True, capture_output=True, text=True, timeout=600)
    return done.stdout
