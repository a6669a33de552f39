"""Training DEEM's stages (`deem-eval align`): data, CSR and its diffusion teacher, MMFSNet, the optimiser,
the loop and checkpoints. Builds on `..model`; never imported by it or by the adapter.
"""
