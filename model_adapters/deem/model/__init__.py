"""DEEM's architecture and its checkpoints: what inference needs and training builds on.

Imports nothing from `..training` or `..adapter` (tests/test_deem_layout.py checks it).
"""
