"""Wire schemas: every body Strata accepts or returns is a msgspec Struct defined here."""
