"""Importers of real map formats (SUMO networks; OpenStreetMap and OpenDRIVE through netconvert) and the Fuyao
map file: docs/maps.md."""
