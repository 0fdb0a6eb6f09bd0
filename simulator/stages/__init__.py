"""One module per kind of step. Stages are pure: arrays in, arrays out, no I/O."""
