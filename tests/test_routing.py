"""Tokens of a line, the streams subscribers follow, and the stretches of streams one read holds."""

from __future__ import annotations

import random
import re

from airflow_lambda_deferrable.cloudwatch.routing import IdsRead, StreamFollowing, StretchesRead, carries, tokens


def test_tokens_find_ids_in_json_text_and_key_value_forms():
    found = tokens('{"correlation_id":"corr-1","x":1} START RequestId: abc-123 Version: $LATEST id=corr-2')
    assert {"corr-1", "abc-123", "corr-2"} <= found


def event(stream: str, timestamp: int, number: int) -> dict:
    return {"logStreamName": stream, "timestamp": timestamp, "eventId": f"{stream}-{number}", "message": "x"}


def test_a_follower_follows_a_stream_from_its_first_event_until_it_leaves_or_a_read_breaks_following():
    following: StreamFollowing[str] = StreamFollowing()
    assert following.since("a", "s1") is None and following.followers("s1") == {}
    following.begin_read(start_ms=0, horizon_ms=0)
    assert following.start("a", "s1", 1_000) == []
    following.start("b", "s1", 1_500)
    following.start("a", "s2", 1_200)
    assert following.followers("s1") == {"a": 1_000, "b": 1_500}
    assert following.since("a", "s2") == 1_200 and following.streams == 2
    following.forget("a")
    assert following.followers("s1") == {"b": 1_500} and following.since("a", "s2") is None
    assert following.streams == 1  # nobody follows s2 any more
    following.clear()
    assert following.since("b", "s1") is None and following.streams == 0


def test_a_follower_starting_at_a_millisecond_gets_the_events_of_it_the_read_brought_before():
    following: StreamFollowing[str] = StreamFollowing()
    following.begin_read(start_ms=0, horizon_ms=0)
    earlier, same_a, same_b = event("s", 999, 1), event("s", 1_000, 2), event("s", 1_000, 3)
    for one in (earlier, same_a, same_b, event("t", 1_000, 4)):
        following.note(one["logStreamName"], one["timestamp"], one)
    assert following.start("a", "s", 1_000) == [same_a, same_b]  # not the earlier one, not stream t's
    assert following.start("b", "s", 1_001) == []
    following.begin_read(start_ms=0, horizon_ms=0)  # a new read: the last one's millisecond is gone
    assert following.start("c", "s", 1_000) == []


def _tokens_split_word_by_word(message: str) -> set[str]:
    """The definition: every run of id characters, and its parts between ``= : / @ +``."""
    found = set(re.findall(r"[A-Za-z0-9._:@+=/-]+", message))
    for token in list(found):
        found.update(part for part in re.split(r"[=:/@+]", token) if part)
    return found


def test_tokens_are_every_word_and_every_part_of_it():
    rng = random.Random(11)
    alphabet = 'aZ9.-_:@+=/ "{},\\tü'
    for _ in range(2_000):
        message = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 40)))
        assert tokens(message) == _tokens_split_word_by_word(message), message


def ingested(stream: str, timestamp: int, number: int, at: int) -> dict:
    return {**event(stream, timestamp, number), "ingestionTime": at}


def test_a_stream_is_complete_up_to_its_newest_event_ingested_before_the_read_began():
    following: StreamFollowing[str] = StreamFollowing()
    following.begin_read(start_ms=1_000, horizon_ms=5_000)
    following.start("a", "s", 1_200)
    assert following.complete("s") == 1_199
    for one in (ingested("s", 1_200, 1, 1_300), ingested("s", 1_400, 2, 4_999), ingested("s", 1_500, 3, 5_000)):
        following.note("s", one["timestamp"], one)
    assert following.complete("s") == 1_199  # only once the read has brought all its pages
    following.end_read()
    # 1_500 was ingested as the read began: events of the stream before it may still have been on their way.
    assert following.complete("s") == 1_400
    assert following.behind(1_401) == {} and following.behind(1_402) == {"s": 1_400}


def test_a_read_starting_after_where_a_stream_is_complete_does_not_move_it_on():
    following: StreamFollowing[str] = StreamFollowing()
    following.begin_read(start_ms=1_000, horizon_ms=5_000)
    following.start("a", "s", 1_000)
    following.end_read()
    assert following.complete("s") == 999
    # A later read from 2_000: the stream's events from 1_000 to 1_999 (a late batch) may be missing.
    following.begin_read(start_ms=2_000, horizon_ms=9_000)
    following.note("s", 2_500, ingested("s", 2_500, 1, 3_000))
    following.end_read()
    assert following.complete("s") == 999 and following.behind(2_000) == {"s": 999}
    # The stream read on its own from where it is complete moves it on; other streams are left as they are.
    following.begin_read(start_ms=1_000, horizon_ms=9_000)
    following.note("s", 2_500, ingested("s", 2_500, 1, 3_000))
    following.end_read(["s"])
    assert following.complete("s") == 2_500
    following.forget("a")
    assert following.complete("s") is None and following.behind(10**9) == {}


def test_a_stream_found_by_a_read_of_request_openers_is_followed_from_there_and_left_behind():
    following: StreamFollowing[str] = StreamFollowing()
    assert following.start_behind("a", "s", 1_000)
    assert following.since("a", "s") == 1_000 and following.behind(5_000) == {"s": 999}
    # Another request of the same stream: followed too, from where the stream is complete, which stays.
    assert following.start_behind("b", "s", 3_000)
    assert following.since("b", "s") == 3_000 and following.complete("s") == 999
    # Once the stream is complete past a request's start, its events since went to other followers only:
    # that request's stretch must be read on its own.
    following.begin_read(start_ms=999, horizon_ms=9_000)
    following.note("s", 4_000, ingested("s", 4_000, 1, 4_500))
    following.end_read(["s"])
    assert following.complete("s") == 4_000
    assert not following.start_behind("c", "s", 3_500)
    assert following.since("c", "s") is None and not following.follows_any("c")


def _event(stream: str, timestamp: int, ingested: int) -> dict:
    return {"logStreamName": stream, "timestamp": timestamp, "ingestionTime": ingested, "message": f"at {timestamp}"}


def test_a_follower_that_joined_during_a_read_that_never_ended_is_whole_only_from_the_next_read():
    # A follows s, whole to 100. A read from 50 stops at 70 (too busy, or failed) after B joined at 60; the next
    # read of s starts where s is complete (101). B never got 71..100: its whole range starts at 101, where
    # that read started, not at 60.
    following: StreamFollowing[str] = StreamFollowing()
    following.begin_read(start_ms=0, horizon_ms=10_000)
    following.start("A", "s", 0)
    for timestamp in range(0, 101):
        following.note("s", timestamp, _event("s", timestamp, 0))
    following.end_read()
    following.begin_read(start_ms=50, horizon_ms=10_000)
    following.start("B", "s", 60)
    following.begin_read(start_ms=101, horizon_ms=10_000)
    for timestamp in range(101, 151):
        following.note("s", timestamp, _event("s", timestamp, 0))
    following.end_read(["s"])
    assert sorted(following.whole(["s"])) == [("A", "s", 101, 149, 10_000), ("B", "s", 101, 149, 10_000)]


def test_a_follower_is_whole_from_where_it_started_and_a_millisecond_short_of_where_the_stream_is_complete():
    # Another event of the newest millisecond read may come in a later batch: that millisecond is not whole.
    following: StreamFollowing[str] = StreamFollowing()
    following.begin_read(start_ms=0, horizon_ms=10_000)
    following.start("A", "s", 10)
    for timestamp in (10, 20, 30):
        following.note("s", timestamp, _event("s", timestamp, 0))
    following.note("s", 40, _event("s", 40, 20_000))  # ingested after the read began: not known whole
    following.end_read()
    assert following.whole() == [("A", "s", 10, 29, 10_000)]


def test_a_read_that_brought_nothing_of_a_stream_says_nothing_of_it_whatever_earlier_reads_brought():
    # CloudWatch may end a read early (ResourceNotFoundException: a stream or the group deleted), and the
    # read then looks finished: its horizon is later than the one that brought the stream to where it is
    # complete, so claiming that far with it would count a late batch ingested in between as given.
    following: StreamFollowing[str] = StreamFollowing()
    following.begin_read(start_ms=0, horizon_ms=10_000)
    following.start("A", "s", 0)
    for timestamp in (0, 500, 1_000):
        following.note("s", timestamp, _event("s", timestamp, 0))
    following.end_read()
    assert following.whole() == [("A", "s", 0, 999, 10_000)]
    following.begin_read(start_ms=100, horizon_ms=20_000)
    following.end_read(["s"])  # no page
    assert following.whole(["s"]) == []
    following.begin_read(start_ms=100, horizon_ms=30_000)
    following.note("s", 700, _event("s", 700, 25_000))  # the late batch, read now
    following.end_read(["s"])
    assert following.whole(["s"]) == [("A", "s", 100, 699, 30_000)]


def test_a_read_of_stretches_is_whole_a_millisecond_short_of_its_newest_event_ingested_before_its_horizon():
    read: StretchesRead[str] = StretchesRead({("s", 0, 100): ["A"]}, horizon_ms=10_000)
    read.hand_out(
        [_event("s", 10, 0), _event("s", 50, 9_999), _event("s", 60, 10_000), {"logStreamName": "s", "timestamp": 70}]
    )
    assert read.whole(["s", "t"]) == [("A", "s", 0, 49, 10_000)]


def test_a_read_of_stretches_tells_each_asker_what_it_has_been_given_whole_after_each_page():
    # A stream's events come in time order: after a page, every event of it before its newest one ingested
    # before the horizon has been brought; each stretch is whole within its own bounds.
    read: StretchesRead[str] = StretchesRead({("s", 0, 100): ["A"], ("s", 40, 60): ["B"]}, horizon_ms=10_000)
    read.hand_out([_event("s", 10, 0), _event("s", 30, 0)])
    assert read.whole(["s"]) == [("A", "s", 0, 29, 10_000)]  # B's stretch starts after it
    read.hand_out([_event("s", 70, 0)])
    assert read.whole(["s"]) == [("A", "s", 0, 69, 10_000), ("B", "s", 40, 60, 10_000)]


def test_a_read_by_ids_tells_who_held_its_ids_as_it_began_what_they_have_been_given_of_each_stream():
    read: IdsRead[str] = IdsRead({"id-1": {"A"}, "id-2": {"B"}}, start_ms=100, horizon_ms=10_000)
    assert read.carried([_event("s", 100, 0)]) == []  # nothing whole yet: that millisecond may have more
    assert sorted(read.carried([_event("s", 150, 5_000), _event("t", 120, 0), _event("t", 130, 20_000)])) == [
        ("A", "id-1", "s", 100, 149, 10_000),
        ("A", "id-1", "t", 100, 119, 10_000),  # t's event ingested after the read began says nothing
        ("B", "id-2", "s", 100, 149, 10_000),
        ("B", "id-2", "t", 100, 119, 10_000),
    ]
    assert read.carried([_event("s", 140, 0)]) == []  # an older event moves nothing


def test_carries_says_what_tokens_says_of_one_term_whatever_the_text_around_it():
    # The dedupe asks of each line whether it carries one of a few ids; routing finds all its words. Both must
    # agree, or a line would be known as given by a read that did not give it.
    draw = random.Random(27)
    terms = ["a-b", "a:b", "a", "b.1", "a=b", "1", "a/b@c", 'a"b', "a b", "é", "", "ab", "b-"]
    alphabet = ["a", "b", "-", ".", ":", "=", "/", "@", "+", " ", '"', "1", "é", "{", "_"]
    checked = 0
    for _ in range(20_000):
        message = "".join(draw.choice(alphabet) for _ in range(draw.randint(0, 12)))
        for term in terms:
            assert carries(message, term) == (term in tokens(message)), (message, term)
            checked += carries(message, term)
    assert checked > 1_000  # the draws hit the terms often enough to tell
