"""``python -m qnnref.conform onnxruntime ...``: the same as ``qnnref conform ...``."""
import sys

from . import main

sys.exit(main())
