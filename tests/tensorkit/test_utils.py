"""tensorkit.utils: atomic replacement that a SIGTERM cannot leave half done, lazy package exports."""

import os
import signal
import sys
import tempfile
import types

import pytest

from tensorkit.utils import Terminated, lazy_exports, replaced_atomically, sigterm_raises


def test_a_file_is_replaced_whole_keeping_its_permissions(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    os.chmod(target, 0o640)
    with replaced_atomically(target) as temporary:
        temporary.write_text("new")
        assert target.read_text() == "old"
    assert target.read_text() == "new" and oct(target.stat().st_mode & 0o777) == oct(0o640)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.txt"]


@pytest.mark.skipif(not hasattr(signal, "pthread_sigmask"), reason="signals cannot be blocked here")
def test_a_sigterm_just_as_the_temporary_is_made_leaves_nothing_behind(tmp_path, monkeypatch):
    made = tempfile.mkstemp

    def mkstemp_then_sigterm(*args, **kwargs):
        result = made(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)   # arrives before the caller has even named the file
        return result

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp_then_sigterm)
    with pytest.raises(Terminated), sigterm_raises():
        with replaced_atomically(tmp_path / "out.txt") as temporary:
            temporary.write_text("never")
    assert list(tmp_path.iterdir()) == []


def test_lazy_exports_import_a_name_on_first_use_and_keep_it():
    package = sys.modules["lazy_demo"] = types.ModuleType("lazy_demo")
    try:
        package.__getattr__, package.__dir__ = lazy_exports("lazy_demo", {"dumps": "json"}, ["decoder"])
        assert "dumps" not in vars(package) and {"dumps", "decoder"} <= set(dir(package))
        assert package.dumps([1]) == "[1]" and "dumps" in vars(package)
        import json

        assert package.dumps is json.dumps
        with pytest.raises(AttributeError, match="no attribute 'loads'"):
            package.loads
    finally:
        del sys.modules["lazy_demo"]
