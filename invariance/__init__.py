"""stnlab: invariance."""
