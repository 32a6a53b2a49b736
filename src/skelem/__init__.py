"""SkelEM: self-supervised axial super-resolution for volume microscopy."""

__version__ = "0.1.0"
