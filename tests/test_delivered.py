"""`Delivered`: each event reaches a subscriber once, whatever the reads bring again; the keys of a second a
read says it gave whole are let go, and an event ingested after that read's horizon is still new."""

from __future__ import annotations

import tracemalloc

from airflow_lambda_deferrable.cloudwatch.delivered import Delivered
from airflow_lambda_deferrable.cloudwatch.event_keys import EventKeys
from airflow_lambda_deferrable.tuning import KEY_SLICE_MS

HORIZON = 1_000_000  # the horizon of the reads below: every event here but the late ones was ingested before
LATE = HORIZON + 5_000  # an event ingested after the read that said its second was given


def lines_of(stream: str, lines: list[tuple[int, str]], ingested: int = 0) -> list[dict]:
    events = [
        {"logStreamName": stream, "timestamp": at, "message": message, "ingestionTime": ingested}
        for at, message in lines
    ]
    EventKeys().assign(events)
    return events


def events_of(stream: str, timestamps: list[int], ingested: int = 0) -> list[dict]:
    return lines_of(stream, [(at, f"line at {at}") for at in timestamps], ingested)


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
    delivered.read_whole("a", 0, 2_999, HORIZON)  # seconds 0, 1 and 2 whole; second 3 not
    assert len(delivered) == 1
    assert delivered.only_new(events) == []
    assert delivered.claimed("a") == 3


def test_a_second_covered_in_part_keeps_its_keys():
    delivered = Delivered()
    events = events_of("a", [1_100, 1_900])
    delivered.only_new(events)
    delivered.read_whole("a", 1_000, 1_500, HORIZON)
    assert len(delivered) == 2
    assert delivered.only_new(events) == []


def test_a_line_ingested_after_the_read_that_gave_its_second_whole_is_new_and_then_given_once():
    # A batch that came late (a stream's earlier lines ingested after its later ones): the read that said the
    # second was given could not have brought it.
    delivered = Delivered()
    delivered.only_new(events_of("a", [100]))
    delivered.read_whole("a", 0, 999, HORIZON)
    late = events_of("a", [50], ingested=LATE)
    assert delivered.only_new(late) == late
    assert delivered.only_new(late) == []  # known by its key now
    delivered.read_whole("a", 0, 999, LATE + 1)  # a later read brought it: its key goes too
    assert len(delivered) == 0
    assert delivered.only_new(late) == []


def test_a_second_that_holds_a_late_line_keeps_its_keys_until_a_read_after_it():
    delivered = Delivered()
    delivered.only_new(events_of("a", [100]) + events_of("a", [200], ingested=LATE))
    delivered.read_whole("a", 0, 999, HORIZON)
    assert len(delivered) == 2
    delivered.read_whole("a", 0, 999, LATE + 1)
    assert len(delivered) == 0


def test_an_event_without_an_ingestion_time_is_known_by_its_key_alone():
    delivered = Delivered()
    events = [{"eventId": "moto-7", "logStreamName": "a", "timestamp": 5}, {"eventId": "01", "timestamp": 5}]
    assert delivered.only_new(events) == events
    assert delivered.only_new(events) == []
    delivered.read_whole("a", 0, KEY_SLICE_MS - 1, HORIZON)
    delivered.read_whole("", 0, KEY_SLICE_MS - 1, HORIZON)
    assert len(delivered) == 2  # no claim covers an event that gave no ingestion time
    assert delivered.only_new(events) == []


def test_a_range_of_one_stream_says_nothing_of_another():
    delivered = Delivered()
    delivered.only_new(events_of("a", [100]))
    delivered.read_whole("a", 0, 10_000, HORIZON)
    events = events_of("b", [500])
    assert delivered.only_new(events) == events
    assert delivered.only_new(events) == []


def test_an_event_given_back_is_given_once_more_even_where_its_stream_was_read_whole():
    delivered = Delivered()
    events = events_of("a", [100, 200])
    delivered.only_new(events)
    delivered.give_back([("a", 200, events[1]["eventId"])])
    delivered.read_whole("a", 0, 999, HORIZON)
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


def test_lines_that_carry_an_id_read_by_it_are_known_without_their_keys_and_the_others_keep_theirs():
    delivered = Delivered()
    events = lines_of("a", [(100, "row 1 id-1"), (1_200, "printed, no id"), (2_500, "row 2 id-1")])
    assert delivered.only_new(events, ["id-1"]) == events
    delivered.read_all_carrying("id-1", "a", 0, 1_999, HORIZON)  # a read by id-1 brought every line of it
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
    delivered.read_all_carrying("id-1", "a", 0, 999, HORIZON)
    events = lines_of("a", [(100, "xid-1y and more"), (200, "value=id-1")])
    assert delivered.only_new(events, ["id-1"]) == events[:1]


def test_a_read_by_ids_notes_nothing_of_the_seconds_a_subscriber_was_given_nothing_of():
    # A read by an OR-pattern of many subscribers' ids tells each of them of every stream it brought.
    delivered = Delivered()
    delivered.only_new(lines_of("a", [(50, "row id-1")]), ["id-1"])
    for stream in range(1_000):
        delivered.read_all_carrying("id-1", f"neighbour-{stream}", 0, 999, HORIZON)
    delivered.read_all_carrying("id-1", "a", 0, 99_999, HORIZON)
    assert delivered.seconds() == 1
    assert len(delivered) == 0


def test_a_line_given_before_its_subscriber_had_the_id_it_carries_is_still_given_once():
    delivered = Delivered()
    events = lines_of("a", [(100, "START RequestId: rid-1"), (1_200, "rid-1 INFO row corr-1")])
    assert delivered.only_new(events, ["corr-1"]) == events
    assert delivered.only_new(events, ["corr-1", "rid-1"]) == []  # the catch-up for rid-1 brings them again
    delivered.read_all_carrying("rid-1", "a", 0, 1_999, HORIZON)
    # Given, they carried no id of the subscriber's, and corr-1: rid-1's claim lets neither second go.
    assert len(delivered) == 2
    assert delivered.only_new(events, ["corr-1", "rid-1"]) == []
    delivered.read_all_carrying("corr-1", "a", 0, 1_999, HORIZON)
    assert len(delivered) == 1  # the START line's second, until the stream is read whole
    assert delivered.only_new(events, ["corr-1", "rid-1"]) == []
    delivered.read_whole("a", 0, 1_999, HORIZON)
    assert len(delivered) == 0


def test_a_line_given_back_is_given_once_more_even_where_its_id_was_read():
    delivered = Delivered()
    events = lines_of("a", [(100, "row id-1")])
    delivered.only_new(events, ["id-1"])
    delivered.give_back([("a", 100, events[0]["eventId"])])
    delivered.read_all_carrying("id-1", "a", 0, 999, HORIZON)
    assert delivered.only_new(events, ["id-1"]) == events
    assert delivered.only_new(events, ["id-1"]) == []


def test_seconds_let_go_out_of_order_still_give_nothing_twice():
    # A late batch: second 2's line is ingested after second 5's read, so second 2 is let go last.
    delivered = Delivered()
    early = events_of("a", [5_100, 9_100])
    late = events_of("a", [2_100], ingested=LATE)
    delivered.only_new(early + late)
    delivered.read_whole("a", 0, 9_999, HORIZON)
    assert len(delivered) == 1
    delivered.read_whole("a", 2_000, 2_999, LATE + 1)
    assert len(delivered) == 0
    assert delivered.only_new(late + early) == []
    newer = events_of("a", [2_200], ingested=LATE + 10)  # ingested after both claims: new
    assert delivered.only_new(newer) == newer


def test_a_second_let_go_keeps_its_claims_in_a_few_bytes():
    # A durable execution may log for hours: what a second keeps once its keys go must stay small. Each second
    # here is given ten lines and then read whole (as a followed stream is), an hour of one stream.
    delivered = Delivered()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for second in range(3_600):
            at = second * KEY_SLICE_MS
            delivered.only_new(events_of("a", [at + 100 * line for line in range(10)]))
            delivered.read_whole("a", at, at + KEY_SLICE_MS - 1, HORIZON)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(delivered) == 0
    assert delivered.only_new(events_of("a", [100, 3_599_900])) == []
    assert held / 3_600 < 64  # 16 B a second as two machine integers; an object per second cost about 530 B


def test_a_claim_in_floats_or_past_the_last_millisecond_is_kept_as_the_integers_it_means():
    delivered = Delivered()
    events = events_of("a", [100])
    delivered.only_new(events)
    delivered.read_whole("a", 0.0, 999.0, float(HORIZON))
    delivered.read_whole("a", 0, 999, 2**70)
    assert len(delivered) == 0
    assert delivered.only_new(events) == []
