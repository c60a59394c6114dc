"""The llama.cpp worker's message pipe: what the worker and its host rely on."""

from __future__ import annotations

import socket
import threading

import pytest

from terminus.engines.worker_pipe import MessagePipe


def _pair() -> tuple[MessagePipe, MessagePipe]:
    a, b = socket.socketpair()
    return MessagePipe(a.detach()), MessagePipe(b.detach())


def test_messages_arrive_whole_and_in_order() -> None:
    host, worker = _pair()
    big = {"body": "x" * 3_000_000, "ids": list(range(10_000))}  # far past one socket buffer
    messages = [("load", [("n_ctx", 2048)]), ("call", 1, "m", big, True), ("exit",)]
    sender = threading.Thread(target=lambda: [host.send(m) for m in messages])
    sender.start()
    received = [worker.recv() for _ in messages]
    sender.join()
    assert received == messages
    host.close()
    worker.close()


def test_poll_says_whether_a_message_waits() -> None:
    host, worker = _pair()
    assert not worker.poll(0.01)
    host.send(("ready", {"load_s": 0.5}))
    assert worker.poll(1.0)
    assert worker.recv() == ("ready", {"load_s": 0.5})
    host.close()
    worker.close()


def test_the_other_side_gone_is_eof() -> None:
    host, worker = _pair()
    host.send(("chunks", 0, [(1, {"x": 1})]))
    host.close()
    assert worker.recv() == ("chunks", 0, [(1, {"x": 1})])
    assert worker.poll(1.0)  # the end is readable too
    with pytest.raises(EOFError):
        worker.recv()
    worker.close()


def test_a_message_cut_short_is_eof_not_a_partial_message() -> None:
    a, b = socket.socketpair()
    a.sendall((100).to_bytes(8, "big") + b"\x80\x05")  # a header promising more than comes
    a.close()
    with pytest.raises(EOFError):
        MessagePipe(b.detach()).recv()


def test_a_closed_pipe_refuses_use() -> None:
    host, worker = _pair()
    worker.close()
    worker.close()  # closing twice is harmless
    with pytest.raises(OSError):
        worker.poll(0)
    with pytest.raises(OSError):  # the reader is gone: a broken pipe, not a hang
        for _ in range(100):
            host.send(("x" * 100_000,))
    host.close()
