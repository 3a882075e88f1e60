"""convssm: convolutional state space models (ConvS5) for long spatiotemporal sequences."""

from convssm._checks import set_value_checks, value_checks, value_checks_enabled

__version__ = "0.1.0"

__all__ = ["set_value_checks", "value_checks", "value_checks_enabled"]
