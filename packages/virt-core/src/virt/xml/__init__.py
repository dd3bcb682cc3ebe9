"""libvirt's XML formats as typed models over a lossless lxml tree."""

from virt.xml._base import MAX_XML_BYTES, XMLDocument, escape, format_element, parse_xml

__all__ = ["MAX_XML_BYTES", "XMLDocument", "escape", "format_element", "parse_xml"]
