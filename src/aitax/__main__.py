"""`python -m aitax` runs the aitax command line."""

from aitax.cli.main import console_entry

if __name__ == "__main__":
    console_entry()
