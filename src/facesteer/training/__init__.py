"""Training networks: StyleGAN2 generators (with DiffAugment)."""
