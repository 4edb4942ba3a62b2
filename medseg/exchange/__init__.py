"""Exchange with the tools labs already use: BioImage Model Zoo packages, GeoJSON (QuPath), per-object CSV.

Each format lives in its own module; :mod:`bioimageio` and :mod:`shapely` are imported
only when a function that needs them is called.
"""
