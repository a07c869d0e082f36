"""Independent references that proofs check the library against (NumPy only, no torch)."""
