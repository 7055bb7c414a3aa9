"""``python -m nx`` runs the command line."""
from nx.cli import main

main()
