"""End-to-end scoring of one submission into one result file."""
