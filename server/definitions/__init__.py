"""The definition language: schemas, loading with positions, reference checks, stored versions."""
