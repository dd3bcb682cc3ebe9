"""virt's remote plugin (its code arrives with its own issue)."""
