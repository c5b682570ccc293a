"""Adapters implementing the ports of the inner layers. Only `infra.bootstrap` builds them."""
