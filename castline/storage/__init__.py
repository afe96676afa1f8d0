"""Object storage behind one interface: a local folder or an S3-compatible bucket."""

from castline.storage.base import ObjectInfo, Store, validate_key
from castline.storage.inputs import fetch_input
from castline.storage.open import open_store
from castline.storage.s3_settings import S3Settings

__all__ = ["ObjectInfo", "S3Settings", "Store", "fetch_input", "open_store", "validate_key"]
