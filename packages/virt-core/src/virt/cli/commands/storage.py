"""virt CLI: storage commands."""
