"""The `aitax` command line."""
