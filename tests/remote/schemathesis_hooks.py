"""Schemathesis hooks for the test run: send generated values of the binary and NDJSON
media types as raw bodies (the server must reject garbage with a 4xx)."""

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def _ndjson(ctx, value):
    if isinstance(value, bytes):
        return value
    return str(value if value is not None else "").encode("utf-8", "surrogatepass")


@schemathesis.serializer(
    "application/vnd.apache.arrow.stream",
    "application/vnd.apache.arrow.file",
    "application/vnd.apache.parquet",
)
def _binary(ctx, value):
    if isinstance(value, bytes):
        return value
    return str(value if value is not None else "").encode("utf-8", "surrogatepass")
