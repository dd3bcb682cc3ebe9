"""virt's Xen plugin (its code arrives with its own issue)."""
