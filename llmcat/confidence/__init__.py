"""What a confidence means: distributions over categories, temperature scaling (calibration)
and the fitted trust that weighs experts."""
