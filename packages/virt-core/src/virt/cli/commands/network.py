"""virt CLI: network commands."""
