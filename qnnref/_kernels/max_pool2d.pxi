# Bindings of include/qnnref/max_pool2d.h (not written yet).
