"""Adversarial tests for issue 13: scoped grants, policies, findings, reads, import.

Each test with a ``FINDING`` comment fails on the code as written and passes once the
finding is fixed; every other test shows a defence that holds."""
