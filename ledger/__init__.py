"""The modelseal writer: LMDB store, Merkle node store, checkpoints, keys.

Not built yet (issue 3). It will import every byte format from ``verifier``.
"""
