"""The write side: command handlers (the service layer) and the command HTTP API."""
