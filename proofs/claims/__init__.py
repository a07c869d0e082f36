"""Claim modules: each registers its claims and checks with proofs.registry on import."""
