"""The one place where boto3/botocore failures become a one-line ``StorageError``.

Every message names the bucket (and key where there is one) and the reason in words a user can
act on. None ever carries a credential: only error codes, status numbers, the endpoint (without
any user:password part) and names castline itself chose go into the text.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from castline.core.errors import StorageError

_NOT_FOUND = {"NoSuchKey", "NotFound", "404"}
_DENIED = {"AccessDenied", "AllAccessDisabled", "403", "Forbidden", "AccountProblem"}
_THROTTLED = {"SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests",
              "RequestThrottled", "ServiceUnavailable", "InternalError", "503", "500", "502", "504"}
_WRONG_REGION = {"PermanentRedirect", "AuthorizationHeaderMalformed", "IllegalLocationConstraintException", "301"}


def location(bucket: str, key: str | None = None) -> str:
    return f"s3://{bucket}/{key}" if key else f"s3://{bucket}"


def safe_endpoint(endpoint: str | None) -> str:
    """The endpoint as scheme://host:port/path, never with a ``user:password@`` part or a query."""
    if not endpoint:
        return "the default AWS endpoint"
    parts = urlsplit(endpoint)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return f"{parts.scheme}://{host}{parts.path.rstrip('/')}"


def root_cause(error: BaseException) -> BaseException:
    """The botocore error under boto3's wrappers (S3UploadFailedError, RetriesExceededError)."""
    seen = set()
    current = error
    while id(current) not in seen:
        seen.add(id(current))
        module = type(current).__module__
        if module.startswith("botocore"):
            return current
        inner = getattr(current, "last_exception", None) or current.__cause__ or current.__context__
        if inner is None:
            break
        current = inner
    return current


def describe(error: BaseException, *, bucket: str, key: str | None = None, endpoint: str | None = None) -> str:
    """One line for ``error`` (as raised by any boto3 call on ``bucket``/``key``)."""
    from botocore import exceptions as bx

    cause = root_cause(error)
    where = location(bucket, key)
    site = safe_endpoint(endpoint)
    if isinstance(cause, bx.ClientError):
        details = cause.response.get("Error", {}) or {}
        code = str(details.get("Code") or "")
        meta = cause.response.get("ResponseMetadata", {}) or {}
        status = meta.get("HTTPStatusCode")
        code = code or str(status or "")
        attempts = int(meta.get("RetryAttempts", 0)) + 1
        if code == "NoSuchBucket":
            return f"bucket '{bucket}' does not exist at {site}"
        if code in _NOT_FOUND:
            return f"object not found: {where}"
        if code == "SignatureDoesNotMatch":
            return f"invalid credentials: signature does not match (check the secret key) for {where} at {site}"
        if code == "InvalidAccessKeyId":
            return f"invalid credentials: access key not recognised by {site} (for {where})"
        if code in ("ExpiredToken", "TokenRefreshRequired", "InvalidToken"):
            return f"credentials expired or session token invalid (for {where}); refresh them and retry"
        if code == "RequestTimeTooSkewed":
            return f"this machine's clock is too far from {site}'s; fix the clock (for {where})"
        if code in _DENIED:
            return f"access denied to {where} (check credentials and bucket permissions)"
        if code == "InvalidBucketName":
            return f"invalid bucket name '{bucket}'"
        if code == "NoSuchUpload":
            return f"multipart upload to {where} was aborted or expired"
        if code in _WRONG_REGION:
            return f"bucket '{bucket}' is in another region or needs another endpoint (set AWS_REGION or " \
                   f"CASTLINE_S3_REGION)"
        if code in ("NotImplemented", "501"):
            return f"{site} does not implement {cause.operation_name} (needed for {where})"
        if code in _THROTTLED or (isinstance(status, int) and status >= 500):
            return f"S3 server error HTTP {status} {code} on {where}, still failing after {attempts} attempts"
        return f"S3 refused {cause.operation_name} on {where}: {code} (HTTP {status})"
    if isinstance(cause, (bx.NoCredentialsError, bx.PartialCredentialsError)):
        return f"no usable S3 credentials for {where} (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, " \
               f"or AWS_PROFILE)"
    if isinstance(cause, bx.ProfileNotFound):
        return f"AWS profile '{cause.kwargs.get('profile', '?')}' not found (needed for {where})"
    if isinstance(cause, bx.NoRegionError):
        return f"no AWS region configured for {where} (set AWS_REGION or CASTLINE_S3_REGION)"
    if isinstance(cause, bx.SSLError):
        return f"TLS handshake with {site} failed (for {where})"
    if isinstance(cause, (bx.EndpointConnectionError, bx.ConnectTimeoutError)):
        return f"cannot reach endpoint {site} (for {where})"
    if isinstance(cause, bx.ReadTimeoutError):
        return f"timed out waiting for {site} (for {where}), still failing after retries"
    if isinstance(cause, (bx.ConnectionClosedError, bx.ResponseStreamingError, bx.IncompleteReadError,
                          bx.HTTPClientError, bx.ConnectionError)):
        return f"connection to {site} kept failing (for {where}), still failing after retries"
    if isinstance(cause, bx.ParamValidationError):
        return f"invalid S3 request for {where}"
    return f"S3 error on {where}: {type(cause).__name__}"


def storage_error(error: BaseException, *, bucket: str, key: str | None = None,
                  endpoint: str | None = None) -> StorageError:
    """``raise storage_error(e, ...) from e`` at every boto3 call site."""
    return StorageError(describe(error, bucket=bucket, key=key, endpoint=endpoint))


def error_code(error: BaseException) -> str:
    """The S3 error code ('NoSuchKey', '404', …) of a ClientError, else ''."""
    cause = root_cause(error)
    response = getattr(cause, "response", None)
    if not isinstance(response, dict):
        return ""
    code = (response.get("Error") or {}).get("Code")
    return str(code or (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or "")
