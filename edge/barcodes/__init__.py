"""Barcodes: camera and USB scanner sources, decoding and loyalty validation."""
