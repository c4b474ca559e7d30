# Bindings of include/qnnref/table.h (not written yet).
