"""Importers of real map formats (SUMO networks; OpenStreetMap and OpenDRIVE through netconvert; Lanelet2 read
directly) and the Fuyao map file: docs/maps.md."""
