"""virt's QEMU plugin (its code arrives with its own issue)."""
