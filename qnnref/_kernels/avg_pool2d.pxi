# Bindings of include/qnnref/avg_pool2d.h (not written yet).
