import os
import time

from leaderboard.scratch import ScratchFolder


def test_exports_older_than_the_limit_are_pruned_when_a_new_one_is_written():
    scratch = ScratchFolder(max_age_s=60)
    old, recent = scratch.new_export(), scratch.new_export()
    (old / "a.csv").write_text("x")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    fresh = scratch.new_export()
    assert not old.exists() and recent.is_dir() and fresh.is_dir()
    assert fresh.parent == scratch.exports and scratch.thumbs.is_dir()
    scratch.close()


def test_close_and_garbage_collection_remove_the_whole_folder():
    scratch = ScratchFolder()
    (scratch.new_export() / "f.png").write_bytes(b"png")
    root = scratch.root
    scratch.close()
    assert not root.exists()
    other = ScratchFolder()
    root = other.root
    del other
    assert not root.exists()
