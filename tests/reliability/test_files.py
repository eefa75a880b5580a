"""Small things about files and the rating server: outputs get the user's umask (not the 0600 / 0700
of the temporaries they are written through), `condtune rate` makes no database for a task it cannot
read, says so in one line for a non-UTF-8 task file or a port in use, and a client that disconnects
mid-answer leaves no traceback in the server's output."""

from __future__ import annotations

import logging
import os
import socket
import stat
import struct
import time
from dataclasses import asdict

import pandas as pd
import pytest

from condtune.cli import main as cli
from condtune.io import atomic_dir, write_json, write_jsonl, write_text
from condtune.rate.task import TaskItem, make_item_id


@pytest.fixture
def umask_027():
    old = os.umask(0o027)
    yield 0o027
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_atomic_outputs_follow_the_umask_and_keep_a_replaced_files_mode(tmp_path, umask_027):
    from condtune.tables import write_table

    assert mode(write_json(tmp_path / "a.json", {"x": 1})) == 0o640
    assert mode(write_jsonl(tmp_path / "a.jsonl", [{"x": 1}])) == 0o640
    assert mode(write_table(pd.DataFrame({"x": [1]}), tmp_path / "t.parquet")) == 0o640
    with atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "sub").mkdir()
        write_text(tmp / "sub" / "f.txt", "hi")
    assert mode(tmp_path / "folder") == 0o750 and mode(tmp_path / "folder" / "sub") == 0o750
    assert mode(tmp_path / "folder" / "sub" / "f.txt") == 0o640
    os.chmod(tmp_path / "a.json", 0o600)  # the user made it private: rewriting it keeps it so, as open() would
    assert mode(write_json(tmp_path / "a.json", {"x": 2})) == 0o600


def test_a_saved_scorer_and_policy_follow_the_umask(tmp_path, tiny_encoder, tiny_lm, umask_027):
    """safetensors writes through a private temporary: its 0600 must not reach the user's folder."""
    from condtune.modeling import load_causal_lm
    from condtune.relabel import TagCard
    from condtune.saved_policy import save_policy
    from condtune.scorer import Scorer
    from condtune.tags import Binning

    scorer = Scorer.new(str(tiny_encoder), "regression", "item").save(tmp_path / "scorer")
    model, tok = load_causal_lm(tiny_lm)
    policy = save_policy(
        model, tok, TagCard(Binning([0.0], [-1.0, 1.0])), out_dir=tmp_path / "policy", base=str(tiny_lm)
    )
    for root in (scorer, policy):
        assert mode(root) == 0o750
        for p in root.rglob("*"):
            assert mode(p) == (0o750 if p.is_dir() else 0o640), p
    assert (scorer / "head.safetensors").exists() and (policy / "model.safetensors").exists()


# ----------------------------------------------------------------------------- condtune rate


def _task(tmp_path, name="tasks.jsonl"):
    items = [
        TaskItem(make_item_id("m", p, sample_index=j, completion=c), p, c, "m", j)
        for p, cs in [("Review:", ["Lovely.", "Dull."]), ("Tweet:", ["Rain again.", "Coffee!"])]
        for j, c in enumerate(cs)
    ]
    return write_jsonl(tmp_path / name, (asdict(i) for i in items)), items


def test_rate_makes_no_database_for_a_task_file_that_is_not_there(tmp_path, capsys):
    assert cli(["rate", str(tmp_path / "nope.jsonl")]) == 2
    assert "nope.jsonl: task file not found" in capsys.readouterr().err
    assert cli(["rate", f"db={tmp_path / 'nodb.sqlite'}", "--export"]) == 2
    assert "no such ratings database" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_rate_names_the_row_of_a_non_utf8_task_file(tmp_path, capsys):
    path, _ = _task(tmp_path)
    lines = path.read_bytes().splitlines()
    lines[2] = lines[2].replace(b'"completion": "', b'"completion": "caf\xe9 ')  # Latin-1, not UTF-8
    path.write_bytes(b"\n".join(lines) + b"\n")
    assert cli(["rate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "tasks.jsonl, row 3: not UTF-8 text (byte 0xe9" in err and "Traceback" not in err
    assert not (tmp_path / "tasks.ratings.sqlite").exists()
    (tmp_path / "tasks.jsonl").write_text(path.read_bytes().decode("latin-1"))  # fixed: now it loads
    (tmp_path / "tasks.card.json").write_text('{"scale": {"min": -4, "max"')
    assert cli(["rate", str(path), "--export"]) == 2
    assert "tasks.card.json: not valid JSON" in capsys.readouterr().err
    (tmp_path / "tasks.card.json").write_text('{"scale": {"min": "low", "max": 4}}')
    assert cli(["rate", str(path), "--export"]) == 2
    assert "tasks.card.json, column 'scale': scale must be" in capsys.readouterr().err


def test_rate_on_a_port_in_use_is_a_one_line_error(tmp_path, capsys):
    path, _ = _task(tmp_path)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert cli(["rate", str(path), f"port={port}"]) == 2
    err = capsys.readouterr().err
    assert f"condtune rate: error: port={port}: already in use on 127.0.0.1" in err and "port=0" in err
    assert "Traceback" not in err


def test_a_client_that_disconnects_mid_answer_leaves_no_traceback(tmp_path, capfd, caplog):
    from condtune.rate.server import make_server
    from condtune.rate.store import Store

    path, items = _task(tmp_path)
    store = Store(tmp_path / "r.sqlite")
    store.set_scale(-4, 4)
    store.import_items(items, source=str(path))
    server = make_server(store, "127.0.0.1", 0)
    server.start_in_thread()
    request = f"GET /rate?rater=ann&mode=score HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\n\r\n".encode()
    try:
        with caplog.at_level(logging.DEBUG, logger="condtune.rate"):
            for _ in range(20):  # ask, then hang up at once with a reset: the answer meets a closed socket
                c = socket.create_connection(("127.0.0.1", server.port))
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                c.sendall(request)
                c.close()
            time.sleep(0.5)
            with socket.create_connection(("127.0.0.1", server.port)) as c:  # and it still serves
                c.sendall(request)
                assert c.recv(64).startswith(b"HTTP/1.0 200")
    finally:
        server.shutdown()
        server.server_close()
    captured = capfd.readouterr()
    assert "Traceback" not in captured.err + captured.out and "BrokenPipe" not in captured.err
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
    assert "went away" in caplog.text  # the disconnects were seen, and only noted at debug level
