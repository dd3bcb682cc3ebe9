"""virt CLI: node commands."""
