"""`python -m genviz`: the command line in genviz.cli.

A typed formula is read before the CLI is imported (that imports torch, about two seconds), so a
formula that cannot be used is refused at once, with the same one line and status as the CLI's."""

import sys

from genviz.formula import FormulaError, parse_formula


def typed_formula(argv: list[str]) -> str | None:
    """The value of `--formula` (as `--formula TEXT` or `--formula=TEXT`), or None."""
    for i, word in enumerate(argv):
        if word.startswith("--formula="):
            return word.removeprefix("--formula=")
        if word == "--formula" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def refuse_a_bad_formula(argv: list[str]) -> int | None:
    """Exit status 2 with one line on stderr when the typed formula cannot be read; else None."""
    text = typed_formula(argv)
    if text is None:
        return None
    try:
        parse_formula(text)
    except FormulaError as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    return None


if __name__ == "__main__":
    status = refuse_a_bad_formula(sys.argv[1:])
    if status is not None:
        raise SystemExit(status)
    from genviz.cli import main

    raise SystemExit(main())
