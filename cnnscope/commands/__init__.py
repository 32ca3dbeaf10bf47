"""One module per CLI command; each imports torch inside the command body."""
