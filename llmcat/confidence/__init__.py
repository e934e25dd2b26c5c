"""What a confidence means: distributions over categories, temperature scaling (calibration)
and the fitted trust that weighs experts."""

from llmcat.confidence.calibration import TemperatureScaling
from llmcat.confidence.trust import TrustFit

__all__ = ["TemperatureScaling", "TrustFit"]
