"""The ``terminus`` command line: parse, call the client, render. No business logic here."""
