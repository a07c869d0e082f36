"""stnlab: figures."""
