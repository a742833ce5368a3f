"""`python -m engine` runs the CLI."""
from .cli import main

main()
