"""`marketsync`, the command-line client of the REST API (through the gateway)."""
