# Bindings of include/qnnref/dequantize.h (not written yet).
