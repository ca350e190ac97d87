"""``python -m bot``: the same as the ``cvf`` console script."""

from bot.cli import main

main()
