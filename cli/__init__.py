"""Command-line shells over ``ledger`` and ``verifier``."""
