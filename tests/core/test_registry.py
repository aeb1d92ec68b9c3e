from __future__ import annotations

import sys
import threading
import time

import pytest

from faceexpr_cli.errors import UnknownNameError
from faceexpr_cli.registry import Registry


def test_registry_lookup_and_unknown_name():
    reg: Registry[int] = Registry("widget")
    reg.add("a", 1)
    assert reg.get("a") == 1 and reg.names() == ["a"] and "a" in reg
    with pytest.raises(UnknownNameError, match="unknown widget 'b'") as exc:
        reg.get("b")
    assert "known: a" in exc.value.one_line()
    with pytest.raises(ValueError):
        reg.add("a", 2)


def test_discovery_is_thread_safe(monkeypatch, tmp_path):
    """Threads that look up while discovery imports must wait for it, not see an empty registry."""
    reg: Registry[str] = Registry("source", discover="fx_slow_pkg")
    pkg = tmp_path / "fx_slow_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "http.py").write_text("import time\ntime.sleep(0.3)\nimport builtins\nbuiltins._fx_reg.add('http', 'ok')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import builtins

    builtins._fx_reg = reg
    results: list[object] = []

    def look():
        try:
            results.append(reg.get("http"))
        except Exception as exc:  # recorded, then asserted on
            results.append(exc)

    threads = [threading.Thread(target=look) for _ in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.01)
    for t in threads:
        t.join()
    del builtins._fx_reg
    sys.modules.pop("fx_slow_pkg.http", None)
    sys.modules.pop("fx_slow_pkg", None)
    assert results == ["ok"] * 4
