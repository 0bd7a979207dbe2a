"""The base layer every other package builds on: kurabe's errors, its directories, TOML files
read with line numbers, and the catalog of bundled and user TOML files (personas, scenarios).

It imports nothing of kurabe's own outside this package."""
