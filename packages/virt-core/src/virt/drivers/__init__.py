"""Drivers that ship with virt-core (each registered through the ``virt.drivers`` entry-point group)."""
