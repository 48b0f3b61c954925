"""tensorkit.utils: atomic replacement that a SIGTERM cannot leave half done, lazy package exports."""

import os
import signal
import sys
import threading
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


def test_a_sigterm_just_as_the_temporary_is_made_leaves_nothing_behind(tmp_path, monkeypatch):
    from tensorkit import utils

    create = utils._create_exclusively
    stop = threading.Event()
    bystander = threading.Thread(target=stop.wait)   # another thread may be the one the signal reaches
    bystander.start()

    def create_then_sigterm(path):
        create(path)
        os.kill(os.getpid(), signal.SIGTERM)   # handled as soon as the file exists

    monkeypatch.setattr(utils, "_create_exclusively", create_then_sigterm)
    try:
        with pytest.raises(Terminated), sigterm_raises():
            with replaced_atomically(tmp_path / "out.txt") as temporary:
                temporary.write_text("never")
    finally:
        stop.set()
        bystander.join()
    assert list(tmp_path.iterdir()) == []


def test_an_existing_file_is_never_taken_for_the_temporary(tmp_path, monkeypatch):
    from tensorkit import utils

    taken = tmp_path / ".out.txt.00000000.tmp"
    taken.write_text("someone else's")
    names = iter(["00000000", "11111111"])
    monkeypatch.setattr(utils.secrets, "token_hex", lambda n: next(names))
    with replaced_atomically(tmp_path / "out.txt") as temporary:
        assert temporary.name == ".out.txt.11111111.tmp"
        temporary.write_text("mine")
    assert taken.read_text() == "someone else's" and (tmp_path / "out.txt").read_text() == "mine"


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
