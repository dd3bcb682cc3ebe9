"""virt CLI: domain commands."""
