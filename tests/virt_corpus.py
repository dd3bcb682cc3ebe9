"""Where the conformance corpus is: ``$VIRT_CONFORMANCE_DIR`` or ``../shared/conformance``.

A plain module (not conftest) so test files in any folder can import it by this unique name.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def conformance_dir() -> Path | None:
    explicit = os.environ.get("VIRT_CONFORMANCE_DIR")
    path = Path(explicit) if explicit else REPO.parent / "shared" / "conformance"
    return path if path.is_dir() else None
