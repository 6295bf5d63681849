"""One module per `bert-jax` subcommand; each defines `main(argv: list[str]) -> int`."""
