"""Event keys: one key per log event, whichever CloudWatch Logs API brought it."""

from __future__ import annotations

from airflow_lambda_deferrable.cloudwatch.event_keys import EventKeys


def filter_event(stream: str, timestamp: int, message: str, event_id: str) -> dict:
    return {"logStreamName": stream, "timestamp": timestamp, "message": message, "eventId": event_id}


def get_event(timestamp: int, message: str) -> dict:
    return {"timestamp": timestamp, "message": message, "ingestionTime": timestamp + 500}


def keyed(keys: EventKeys, events: list[dict]) -> list[str]:
    keys.assign(events)
    return [event["eventId"] for event in events]


def test_an_event_has_the_same_key_from_filter_and_from_get_and_a_get_event_names_its_stream():
    by_filter = [filter_event("s1", 10, "a", "3" * 56), filter_event("s1", 11, "b", "4" * 56)]
    by_get = [get_event(10, "a"), get_event(11, "b")]
    assert keyed(EventKeys(), by_filter) == keyed(EventKeys("s1"), by_get)
    assert [event["logStreamName"] for event in by_get] == ["s1", "s1"]
    assert all(key.isdecimal() and int(key) < 2**62 for key in keyed(EventKeys(), by_filter))


def test_identical_lines_of_one_millisecond_are_two_events_and_other_streams_or_times_differ():
    same = [get_event(10, "tick"), get_event(10, "tick"), get_event(11, "tick")]
    keys = keyed(EventKeys("s1"), same)
    assert len(set(keys)) == 3
    assert keyed(EventKeys("s2"), [get_event(10, "tick")])[0] not in keys


def test_a_pattern_that_leaves_other_lines_of_the_millisecond_out_gives_the_same_keys():
    # A read with a pattern brings the id line but not the print of the same millisecond; a read of the
    # stream brings both, the print first: the id line's key is the same in both.
    whole = keyed(EventKeys("s1"), [get_event(10, "print"), get_event(10, "id line"), get_event(10, "id line")])
    with_pattern = keyed(EventKeys(), [filter_event("s1", 10, "id line", "1"), filter_event("s1", 10, "id line", "2")])
    assert with_pattern == whole[1:]


def test_pages_of_one_read_continue_the_count_and_a_read_from_that_millisecond_counts_the_same():
    one_read = EventKeys("s1")
    first_page = keyed(one_read, [get_event(9, "x"), get_event(10, "tick")])
    second_page = keyed(one_read, [get_event(10, "tick"), get_event(12, "y")])
    again_from_10 = keyed(EventKeys("s1"), [get_event(10, "tick"), get_event(10, "tick"), get_event(12, "y")])
    assert [first_page[1], *second_page] == again_from_10
