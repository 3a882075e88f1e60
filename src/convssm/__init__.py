"""convssm: convolutional state space models (ConvS5) for long spatiotemporal sequences."""

__version__ = "0.1.0"
