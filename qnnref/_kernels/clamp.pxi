# Bindings of include/qnnref/clamp.h (not written yet).
