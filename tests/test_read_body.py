"""listen.read_body / replaying: the one way `serve` and `review` read a request body under their size
limit before the app sees it (chunked bodies counted too), then hand it to the app once."""

from __future__ import annotations

import asyncio

import pytest

from culturellm.listen import BodyTooLarge, read_body, replaying


def _receive(*messages):
    queue = list(messages)

    async def receive():
        return queue.pop(0)

    return receive


def _chunk(body: bytes, more: bool) -> dict:
    return {"type": "http.request", "body": body, "more_body": more}


def test_a_chunked_body_is_read_whole_and_replayed_once() -> None:
    disconnect = {"type": "http.disconnect"}
    receive = _receive(_chunk(b"ab", True), _chunk(b"cd", False), disconnect)
    body = asyncio.run(read_body(receive, 4))
    assert body == b"abcd"
    replay = replaying(body, receive)
    assert asyncio.run(replay()) == _chunk(b"abcd", False)
    assert asyncio.run(replay()) == disconnect  # then the real receive


def test_past_the_limit_or_a_disconnect() -> None:
    with pytest.raises(BodyTooLarge):
        asyncio.run(read_body(_receive(_chunk(b"abc", True), _chunk(b"de", False)), 4))
    assert asyncio.run(read_body(_receive({"type": "http.disconnect"}), 4)) is None
