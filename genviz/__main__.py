"""`python -m genviz`: the command line in genviz.cli."""

from genviz.cli import main

raise SystemExit(main())
