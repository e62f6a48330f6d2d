"""`cardfeat`: the project's one console script (installed by `make setup`). Each subcommand is a door to an
existing command line, with that command line's own parser and `main()`; see cardfeat/cli.py and docs/cli.md."""
