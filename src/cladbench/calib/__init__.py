"""The Z->ee detector calibration: optimisers, uncertainties, its benchmark and tables."""
