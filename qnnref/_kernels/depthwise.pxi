# Bindings of include/qnnref/depthwise.h (not written yet).
