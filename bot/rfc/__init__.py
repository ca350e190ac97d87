"""RFC documents: parsing, linting and the index (pure core: text in, data out)."""

from bot.rfc.document import (
    FIELDS,
    STATUSES,
    Decision,
    DocumentError,
    Heading,
    RfcDocument,
    load_rfc,
    parse_rfc,
    rfc_files,
    slugify,
    update_front_matter,
)

__all__ = [
    "FIELDS",
    "STATUSES",
    "Decision",
    "DocumentError",
    "Heading",
    "RfcDocument",
    "load_rfc",
    "parse_rfc",
    "rfc_files",
    "slugify",
    "update_front_matter",
]
