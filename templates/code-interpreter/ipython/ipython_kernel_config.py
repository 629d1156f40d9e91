# IPython kernels of the code interpreter (Debian's python3-ipykernel reads
# /etc/ipython): tracebacks without colour codes, whole collections in
# text results, and the formatters that fill E2B's `data` (DataFrames) and
# `chart` (matplotlib figures) fields and `json` for lists and dicts.
import os
import sys

c = get_config()  # noqa: F821
c.InteractiveShell.colors = "NoColor"
c.PlainTextFormatter.max_seq_length = 0
_lib = os.environ.get("E2B_KERNELS_LIB", "/usr/local/lib/e2b-kernels")
if _lib not in sys.path:
    sys.path.insert(0, _lib)
c.InteractiveShellApp.extensions = ["e2b_formatters"]
