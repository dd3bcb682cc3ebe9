"""virt CLI: snapshot commands."""
