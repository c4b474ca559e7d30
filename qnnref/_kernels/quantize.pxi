# Bindings of include/qnnref/quantize.h (not written yet).
