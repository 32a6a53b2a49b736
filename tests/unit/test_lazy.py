"""The packages' lazy public names (skelem._lazy)."""

from __future__ import annotations

import pytest

import skelem.config
import skelem.data
from skelem._lazy import lazy_attributes


def test_a_lazy_name_is_its_home_modules_object() -> None:
    from skelem.config.restore import RestoreOptions
    from skelem.data.interpolation import upsample

    assert skelem.config.RestoreOptions is RestoreOptions
    assert skelem.data.upsample is upsample


@pytest.mark.parametrize("package", [skelem.config, skelem.data])
def test_an_unknown_name_raises_attribute_error_naming_the_package(package) -> None:
    with pytest.raises(AttributeError, match=f"module '{package.__name__}' has no attribute"):
        package.no_such_name  # noqa: B018
    assert not hasattr(package, "no_such_name")


def test_lazy_attributes_imports_only_on_use() -> None:
    getter = lazy_attributes("pkg", {"dumps": "json"})
    import json

    assert getter("dumps") is json.dumps
    with pytest.raises(AttributeError, match="module 'pkg' has no attribute 'loads'"):
        getter("loads")
