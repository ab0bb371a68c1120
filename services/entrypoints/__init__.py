"""Where the `taskstream` command starts, and the development runner it starts."""
