"""stnlab: models."""
