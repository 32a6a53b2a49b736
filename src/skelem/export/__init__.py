"""Exporting SkelEM models to other ecosystems (the bioimage.io model zoo)."""
