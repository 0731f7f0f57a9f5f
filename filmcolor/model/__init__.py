"""The model file: its contract, export from a training run, int8 quantisation, colour
calibration."""
