"""The benchmark: timing cells, their spread, and the CUDA records."""
