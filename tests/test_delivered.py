"""`Delivered`: each event reaches a subscriber once, whatever the reads bring again, and the keys of a range
read whole are let go."""

from __future__ import annotations

from airflow_lambda_deferrable.cloudwatch.delivered import Delivered, Ranges
from airflow_lambda_deferrable.cloudwatch.event_keys import EventKeys
from airflow_lambda_deferrable.tuning import KEY_SLICE_MS


def events_of(stream: str, timestamps: list[int]) -> list[dict]:
    events = [{"logStreamName": stream, "timestamp": at, "message": f"line at {at}"} for at in timestamps]
    EventKeys().assign(events)
    return events


def test_an_event_is_given_once_however_often_reads_bring_it():
    delivered = Delivered()
    first = events_of("a", [10, 20, 30])
    assert delivered.only_new(first) == first
    assert delivered.only_new([*first, *first]) == []
    later = events_of("a", [40])
    assert delivered.only_new([first[2], *later]) == later


def test_identical_events_of_two_streams_are_two_events():
    delivered = Delivered()
    one, other = events_of("a", [10]), events_of("b", [10])
    assert delivered.only_new(one + other) == one + other


def test_a_range_read_whole_lets_go_of_the_keys_of_the_seconds_it_covers_and_still_gives_nothing_twice():
    delivered = Delivered()
    events = events_of("a", [100, 900, 1_500, 2_100, 2_999, 3_200])
    delivered.only_new(events)
    delivered.read_whole("a", 0, 2_999)  # seconds 0, 1 and 2 whole; second 3 not
    assert len(delivered) == 1
    assert delivered.only_new(events) == []
    assert delivered.whole("a") == [(0, 2_999)]


def test_a_second_covered_in_part_keeps_its_keys():
    delivered = Delivered()
    events = events_of("a", [1_100, 1_900])
    delivered.only_new(events)
    delivered.read_whole("a", 1_000, 1_500)
    assert len(delivered) == 2
    assert delivered.only_new(events) == []


def test_whole_ranges_merge_when_they_touch_or_overlap_and_stay_apart_otherwise():
    delivered = Delivered()
    delivered.read_whole("a", 0, 999)
    delivered.read_whole("a", 1_000, 1_999)
    delivered.read_whole("a", 5_000, 5_999)
    delivered.read_whole("a", 1_500, 2_500)
    assert delivered.whole("a") == [(0, 2_500), (5_000, 5_999)]
    delivered.read_whole("a", 10, 5)  # an empty range changes nothing
    assert delivered.whole("a") == [(0, 2_500), (5_000, 5_999)]


def test_a_range_of_one_stream_says_nothing_of_another():
    delivered = Delivered()
    delivered.read_whole("a", 0, 10_000)
    events = events_of("b", [500])
    assert delivered.only_new(events) == events
    assert delivered.only_new(events) == []


def test_an_event_given_back_is_given_once_more_even_where_its_stream_was_read_whole():
    delivered = Delivered()
    events = events_of("a", [100, 200])
    delivered.only_new(events)
    delivered.give_back([("a", 200, events[1]["eventId"])])
    delivered.read_whole("a", 0, 999)
    assert delivered.only_new(events) == [events[1]]
    assert delivered.only_new(events) == []  # once more, not forever
    assert len(delivered) == 0


def test_an_event_given_back_before_its_range_is_read_whole_is_given_once_more():
    delivered = Delivered()
    events = events_of("a", [1_100])
    delivered.only_new(events)
    delivered.give_back([("a", 1_100, events[0]["eventId"])])
    assert delivered.only_new(events) == events
    assert delivered.only_new(events) == []


def test_events_without_poller_keys_are_kept_apart_and_let_go_too():
    delivered = Delivered()
    events = [{"eventId": "moto-7", "logStreamName": "a", "timestamp": 5}, {"eventId": "01", "timestamp": 5}]
    assert delivered.only_new(events) == events
    assert delivered.only_new(events) == []
    delivered.read_whole("a", 0, KEY_SLICE_MS - 1)
    delivered.read_whole("", 0, KEY_SLICE_MS - 1)
    assert len(delivered) == 0


def lines_of(stream: str, lines: list[tuple[int, str]]) -> list[dict]:
    events = [{"logStreamName": stream, "timestamp": at, "message": message} for at, message in lines]
    EventKeys().assign(events)
    return events


def test_lines_that_carry_an_id_read_by_it_are_known_without_their_keys_and_the_others_keep_theirs():
    delivered = Delivered()
    events = lines_of("a", [(100, "row 1 id-1"), (1_200, "printed, no id"), (2_500, "row 2 id-1")])
    assert delivered.only_new(events, ["id-1"]) == events
    delivered.read_all_carrying("id-1", "a", 0, 1_999)  # a read by id-1 brought every line of it to 1,999
    # Let go: the second whose lines all carry the id. Kept: the second with a line without it (only a read of
    # every line lets it go), and the id's line of a second not covered.
    assert len(delivered) == 2
    assert delivered.only_new(events, ["id-1"]) == []
    # A line without the id in that range was not brought by the read by id: it is new when it first comes.
    unseen = lines_of("a", [(300, "printed later, no id")])  # in the second let go
    assert delivered.only_new(unseen, ["id-1"]) == unseen
    assert delivered.only_new(unseen, ["id-1"]) == []


def test_a_line_that_holds_an_id_inside_a_longer_word_is_not_taken_as_carrying_it():
    # The poller routes by whole words (`tokens`): such a line was not given by the read by id.
    delivered = Delivered()
    delivered.only_new(lines_of("a", [(50, "row id-1")]), ["id-1"])
    delivered.read_all_carrying("id-1", "a", 0, 999)
    events = lines_of("a", [(100, "xid-1y and more"), (200, "value=id-1")])
    assert delivered.only_new(events, ["id-1"]) == events[:1]


def test_a_read_by_ids_notes_nothing_of_the_streams_a_subscriber_was_given_nothing_of():
    # A read by an OR-pattern of many subscribers' ids tells each of them of every stream it brought.
    delivered = Delivered()
    delivered.only_new(lines_of("a", [(50, "row id-1")]), ["id-1"])
    for stream in range(1_000):
        delivered.read_all_carrying("id-1", f"neighbour-{stream}", 0, 999)
    delivered.read_all_carrying("id-1", "a", 0, 999)
    assert delivered.ranges() == 1
    assert len(delivered) == 0


def test_a_line_given_before_its_subscriber_had_the_id_it_carries_is_still_given_once():
    delivered = Delivered()
    events = lines_of("a", [(100, "START RequestId: rid-1"), (1_200, "rid-1 INFO row corr-1")])
    assert delivered.only_new(events, ["corr-1"]) == events
    assert delivered.only_new(events, ["corr-1", "rid-1"]) == []  # the catch-up for rid-1 brings them again
    delivered.read_all_carrying("rid-1", "a", 0, 1_999)
    # Given, they carried no id of the subscriber's, and corr-1: rid-1's range lets neither second go.
    assert len(delivered) == 2
    assert delivered.only_new(events, ["corr-1", "rid-1"]) == []
    delivered.read_all_carrying("corr-1", "a", 0, 1_999)
    assert len(delivered) == 1  # the START line's second, until the stream is read whole
    assert delivered.only_new(events, ["corr-1", "rid-1"]) == []
    delivered.read_whole("a", 0, 1_999)
    assert len(delivered) == 0


def test_a_line_given_back_is_given_once_more_even_where_its_id_was_read():
    delivered = Delivered()
    events = lines_of("a", [(100, "row id-1")])
    delivered.only_new(events, ["id-1"])
    delivered.give_back([("a", 100, events[0]["eventId"])])
    delivered.read_all_carrying("id-1", "a", 0, 999)
    assert delivered.only_new(events, ["id-1"]) == events
    assert delivered.only_new(events, ["id-1"]) == []


def test_ranges_are_found_by_bisection_whatever_their_number():
    ranges = Ranges()
    for first in range(0, 10_000, 10):
        ranges.add(first, first + 4)
    assert ranges.covers(5_002) and not ranges.covers(5_005)
    assert ranges.covers(5_000, 5_004) and not ranges.covers(5_000, 5_010)
    ranges.add(5_005, 5_009)  # fills the gap: two ranges become one
    assert ranges.covers(5_000, 5_014)
    assert len(list(ranges)) == 999
    ranges.add(-10, 20_000)
    assert list(ranges) == [(-10, 20_000)]
