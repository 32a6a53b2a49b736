"""The napari plugin: a restoration dock widget, a reader and the FIB-SEM sample.

Installed with ``pip install 'skelem[napari]'`` and found by napari through the npe2 manifest
``napari.yaml`` (entry point ``napari.manifest``). Only this package imports napari and Qt, and
only in the modules the manifest names (:mod:`skelem.napari._widget` imports Qt); the rest of
SkelEM never does.
"""
