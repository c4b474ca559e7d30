# Bindings of include/qnnref/mul.h (not written yet).
