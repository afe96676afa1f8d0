"""Object storage behind one interface: a local folder today, S3-compatible stores next."""

from castline.storage.base import ObjectInfo, Store, validate_key
from castline.storage.open import open_store

__all__ = ["ObjectInfo", "Store", "open_store", "validate_key"]
