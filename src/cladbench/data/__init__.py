"""Input data: fetching and verifying the real files, the GW windows (simulated and GW150914)."""
