"""`python -m scheduling ...`: the same as the `scheduling` console script."""

from scheduling.run.cli import main

main()
