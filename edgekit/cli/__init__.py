"""The command line: thin skins over the library, one module per command group."""
