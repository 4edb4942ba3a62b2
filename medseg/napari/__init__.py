"""napari plugin (npe2): read medseg outputs, predict the current image with a run or a bioimage.io package."""
