"""napari plugin (npe2 manifest ``napari.yaml``): open medseg outputs, predict the current image.

The manifest is found through the ``napari.manifest`` entry point; :mod:`.reader` and
:mod:`.widget` hold plain functions napari calls (napari itself is imported only inside
the widget's entry function).
"""
