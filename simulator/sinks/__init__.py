"""The only modules that touch files (and, later, databases)."""
