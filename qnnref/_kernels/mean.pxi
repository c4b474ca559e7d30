# Bindings of include/qnnref/mean.h (not written yet).
