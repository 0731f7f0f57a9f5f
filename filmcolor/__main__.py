"""``python -m filmcolor``: the same as the ``filmcolor`` command."""

from filmcolor.cli import main

if __name__ == "__main__":
    main(prog_name="filmcolor")
