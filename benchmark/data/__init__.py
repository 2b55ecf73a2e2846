"""Human data: loading the IMI release, validating it, exclusions, per-unit aggregation, simulation."""
