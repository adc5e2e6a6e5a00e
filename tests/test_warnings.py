"""mlpulse's own code raises no warnings on valid input: the suite turns them into errors."""

from __future__ import annotations

import warnings

import pytest


class TestWarningsFail:
    """A warning attributed to an mlpulse module fails the test that triggered it."""

    def test_configured(self, pytestconfig) -> None:
        assert "error::Warning:mlpulse" in pytestconfig.getini("filterwarnings")

    def test_mlpulse_warning_is_an_error(self) -> None:
        with pytest.raises(RuntimeWarning):
            warnings.warn_explicit(
                "invalid value encountered in cast", RuntimeWarning, "validate.py", 1,
                module="mlpulse.engine.validate",
            )

    def test_other_modules_warn_as_usual(self) -> None:
        with pytest.warns(UserWarning):
            warnings.warn_explicit("elsewhere", UserWarning, "x.py", 1, module="othermodule")
