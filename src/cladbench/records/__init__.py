"""Records: the run records aggregated into tables, and the archived GPU records read back."""
