"""Result files: schema, atomic writer, validating reader, provenance."""
