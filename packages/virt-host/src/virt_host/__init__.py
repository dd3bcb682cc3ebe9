"""virt's host plugin (its code arrives with its own issue)."""
