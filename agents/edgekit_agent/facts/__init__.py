"""Device facts for `hello`: each module holds a pure parser (``parse_...(text)``, unit-tested on
recorded kernel and firmware formats) next to its reader (``read_...(host)``, I/O only; every
failure is None)."""
