"""The API gateway built into both apps: request ids, authentication, scopes, errors, logs."""
