"""The claims catalogue, its checks, the report, and the stnlab command line."""
