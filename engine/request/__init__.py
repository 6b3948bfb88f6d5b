"""What to compute: the TOML spec -> a frozen SweepRequest, numerics, the options layer."""
