# Bindings of include/qnnref/conv2d.h (not written yet).
