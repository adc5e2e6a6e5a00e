r"""PromQL text built from user-supplied names: label values quoted so that any model name
stays one string, in Prometheus and in Grafana.

A model name can hold anything (quotes, backslashes, newlines, ``$version``). Inside a
PromQL double-quoted string a backslash and a double quote are escaped, control characters
are written as ``\xNN``, and ``$``, ``[`` and ``]`` as ``\x24``, ``\x5b`` and ``\x5d``:
PromQL reads them back as the same characters, while Grafana, which replaces ``$name``,
``${name}`` and ``[[name]]`` in a query before it sends it, finds nothing to replace. The
same text is therefore safe in a Prometheus rule file and in a Grafana dashboard.

>>> print(quote('churn "v2" \\ $version'))
"churn \"v2\" \\ \x24version"
>>> print(selector("mlpulse_metric", model="a\nb", name="accuracy"))
mlpulse_metric{model="a\nb", name="accuracy"}
"""

from __future__ import annotations

from ..errors import ConfigError

# Characters written as an escape sequence (everything else stands for itself).
_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\r": "\\r", "\t": "\\t"}
_HEX = {"$", "[", "]", "\x7f"}


def _escape_char(char: str) -> str:
    if char in _ESCAPES:
        return _ESCAPES[char]
    if char in _HEX or ord(char) < 0x20:
        return f"\\x{ord(char):02x}"
    return char


def quote(value: str) -> str:
    """``value`` as a PromQL double-quoted string literal that Grafana leaves alone."""
    return '"' + "".join(_escape_char(c) for c in value) + '"'


def selector(metric: str, **matchers: str) -> str:
    """A series selector with equality matchers, in the order given."""
    inner = ", ".join(f"{label}={quote(value)}" for label, value in matchers.items())
    return f"{metric}{{{inner}}}"


def check_model_name(model: object) -> str:
    """The model name if it can be written into PromQL, YAML and JSON; else ConfigError."""
    if not isinstance(model, str) or not model:
        raise ConfigError(f"model name must be a non-empty string, got {model!r}")
    try:
        model.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigError(
            f"model name {model!r} is not valid Unicode text (character {exc.start}): "
            "Prometheus label values are UTF-8"
        ) from None
    return model


__all__ = ["check_model_name", "quote", "selector"]
