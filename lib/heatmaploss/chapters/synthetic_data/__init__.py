"""Chapter 1: the thesis's synthetic cardiac MRIs regenerated and checked against its
published data (no training).

* :mod:`.analysis` — per-image fractions and geometry, the calibration table (no TF);
* :mod:`.figures` — samples, heart fractions, geometry distributions (no TF).
"""
