"""virt's LXC plugin (its code arrives with its own issue)."""
