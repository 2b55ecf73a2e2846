"""Security and fault-tolerance tests: each reproduces an attack on, or a fault of, the public leaderboard's pipeline.

Runs in CI by default (no marks). Where a guarantee is tested elsewhere too, the other test is named in the module.
"""
