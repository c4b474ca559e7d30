# Bindings of include/qnnref/add.h (not written yet).
