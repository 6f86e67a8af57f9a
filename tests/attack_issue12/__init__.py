"""Adversarial tests for issue 12: witnesses, cosigned checkpoints, publication, monitor.

A test marked ``# FINDING: <severity>: <what>`` fails on the code it was written against
and passes once the finding is fixed; the others show a defence that holds."""
