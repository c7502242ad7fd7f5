"""``python -m eventlog``: the ``eventlog`` command."""

from ._cli import main

if __name__ == "__main__":
    main()
