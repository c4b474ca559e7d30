# Bindings of include/qnnref/matmul.h (not written yet).
