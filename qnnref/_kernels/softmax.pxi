# Bindings of include/qnnref/softmax.h (not written yet).
