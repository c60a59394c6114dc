"""``import terminus`` stays cheap: heavy libraries load only when they are used."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

HEAVY = ("xllamacpp", "pydantic", "httpx", "tqdm", "numpy", "jsonschema", "psutil", "filelock")


def _run(code: str) -> dict[str, object]:
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_import_terminus_is_light() -> None:
    report = _run(
        f"""
        import json, sys
        import terminus
        heavy = {HEAVY!r}
        loaded = sorted({{m.split(".")[0] for m in sys.modules}} & set(heavy))
        submodules = sorted(m for m in sys.modules if m.startswith("terminus."))
        print(json.dumps({{"loaded": loaded, "submodules": submodules, "version": terminus.__version__}}))
        """
    )
    assert report["loaded"] == []
    assert report["submodules"] == ["terminus._version"]  # one constant, shared with pyproject
    assert report["version"] == "0.1.0"


def test_terminus_names_resolve_lazily() -> None:
    report = _run(
        """
        import json, sys
        import terminus
        before = "terminus.client.sync" in sys.modules
        client_class = terminus.Terminus
        after = "terminus.client.sync" in sys.modules
        from terminus.client.sync import Terminus
        done = terminus.Done(stop_reason="stop")
        errors = terminus.errors
        print(json.dumps({
            "before": before,
            "after": after,
            "same": client_class is Terminus,
            "cached": "Terminus" in vars(terminus),
            "done": done.stop_reason,
            "errors": errors.__name__,
            "llama": "xllamacpp" in sys.modules or "terminus.engines.llamacpp" in sys.modules,
            "httpx": "httpx" in sys.modules,
            "tqdm": "tqdm" in sys.modules,
            "in_all": sorted(set(terminus.__all__) - set(dir(terminus))),
        }))
        """
    )
    assert report["before"] is False and report["after"] is True
    assert report["same"] is True and report["cached"] is True
    assert report["done"] == "stop"
    assert report["errors"] == "terminus.errors"
    # Even the client does not pull in an engine, HTTP or progress bars until used.
    assert report["llama"] is False and report["httpx"] is False and report["tqdm"] is False
    assert report["in_all"] == []


def test_every_public_name_resolves() -> None:
    import terminus

    for name in terminus.__all__:
        assert getattr(terminus, name) is not None, name


def test_unknown_attribute_is_an_attribute_error() -> None:
    import terminus

    with pytest.raises(AttributeError, match="NoSuchThing"):
        terminus.NoSuchThing  # noqa: B018


def test_errors_module_is_dependency_free() -> None:
    report = _run(
        """
        import json, sys
        import terminus.errors, terminus.paths
        print(json.dumps(sorted(m for m in sys.modules if m.startswith(("pydantic", "terminus.")))))
        """
    )
    assert report == ["terminus._version", "terminus.errors", "terminus.paths"]
