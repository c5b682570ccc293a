"""The read side: queries over the read models, audit histories, and the read HTTP API."""
