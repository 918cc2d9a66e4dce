"""``python -m tenantvec``: the command line (same as the ``tenantvec`` script)."""

from .cli import main

if __name__ == "__main__":
    main(prog_name="tenantvec")
