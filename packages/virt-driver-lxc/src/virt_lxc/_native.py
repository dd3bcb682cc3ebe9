"""Placeholder."""
def capabilities_xml() -> str:
    return ""
