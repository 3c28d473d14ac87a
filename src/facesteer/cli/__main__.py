"""``python -m facesteer.cli``: the ``facesteer`` command."""

from facesteer.cli import main

main()
