"""virt CLI: nodedev commands."""
