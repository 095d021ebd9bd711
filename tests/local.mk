# Tests mirror the source tree: tests/<module>/check_<file>.c.
