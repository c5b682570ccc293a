"""Infrastructure: adapters for the ports, the composition root, the CLI and provisioning."""
