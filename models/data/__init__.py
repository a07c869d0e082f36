"""Dataset code: MNIST, perturbed variants, loaders for unreachable datasets."""
