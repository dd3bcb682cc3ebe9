"""virt CLI commands, one module per area (each registers with ``virt.cli._framework.command``)."""
