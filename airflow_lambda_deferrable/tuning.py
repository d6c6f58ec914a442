"""Every tuning number of the reader and the trigger's pace, in one place: what it is, why, and what it buys.

Facts of the AWS APIs are in `limits`. "Ablation" figures come from the scale benchmark under its volume
conditions (N = 1000, shared, seed 7; `BENCHMARKS.md`, "What each heuristic buys"): the heuristic switched
off or set to a neutral value, against two baseline runs of the same sitting, which had 134 / 135
FilterLogEvents calls, 201 / 196 GetLogEvents calls, p95 11.8 / 11.4 s and 1.99 / 2.00 bytes read per byte
logged. Figures marked (2nd) come from a second sitting (2026-12-06 23:35 to 00:41 UTC), whose two baseline
runs had 133 / 137 calls, 202 / 202 GetLogEvents calls, p95 11.0 / 13.4 s and 2.03x / 2.03x.

A "guard" is no heuristic: it bounds memory, a loop or a wait, whatever the load, and the benchmark cannot
show it. Each says what it prevents, and a test pins it where one can. "Not ablated" marks a number whose
effect is not measured yet.
"""

from __future__ import annotations

# --- The pace of calls (`runtime.rate_limit`) ---------------------------------------------------------------

# `[lambda_deferrable] max_requests_per_second` outside these bounds (or not a number) falls back to the
# default: 0 would divide by zero, a negative rate would spin, NaN or infinity would not limit at all. Guard
# (tests/test_rate_limit.py).
MAX_REQUESTS_PER_SECOND_BOUNDS = (0.1, 100.0)
# Throttling halves the rate down to this floor, never to zero. Guard (tests/test_rate_limit.py).
MIN_REQUESTS_PER_SECOND = 0.2
# Additive increase, multiplicative decrease, each triggerer process on its own: the quota is the account's,
# shared by every triggerer and by other tools, and throttling answers are its only news of the others. Without
# throttling the rate creeps back by this much per second (counted in time, not in calls: at a low rate,
# recovering per call took a minute or more). Several triggerers (issue 29; 3 processes x 1,000 invocations,
# strictest Region, volume; BENCHMARKS.md, "Several triggerers, one quota"): at 0.1, p95 21.0 and 23.6 s in
# single runs, each budget down to 0.2-0.6 FilterLogEvents/s and 15 s or more below its ceiling after each
# halving, while the quota ran full in only 26 of 292 s; at 0.4, p95 16.6 s; at 1.0, p95 14.6 s with 423 calls
# (N/5 is 600). In the sitting of BENCHMARKS.md's table: 18.1 s at 1.0 against 21.9 s at 0.1. (A gentler cut,
# to 0.7 with 0.4/s, gave 14.3 s and 441 calls in one run: no better, and one more number.) One triggerer (11
# throttling answers a run) saw no difference: 131 calls and p95 10.6 s against 130 and 10.7 s in the sitting.
RATE_RECOVERY_PER_SECOND = 1.0
# Throttling answers within this long of a halving are the same burst (calls in flight together, a page
# asked again): the rate is halved once per burst, not once per answer, which drove it to the floor.
# Ablation (0): 135 calls, p95 12.2 s, within noise with 10-11 throttling answers a run; when it came
# (3805dca, throttling in bursts), p95 went from 184.8 to 149.3 s.
THROTTLE_BURST_SECONDS = 2.0

# --- When the reader reads (`cloudwatch.read_planner`, `cloudwatch.shared_poller`) ----------------------------

# The shortest sleep of the cycle loop. Guard against a busy loop (tests/test_read_planner.py).
MIN_CYCLE_SECONDS = 0.1
# A full read asked for by a subscriber comes early, but never sooner than this share of the interval
# after the last one.
MIN_READ_GAP_SHARE = 0.5
# Stretches asked for between full reads are read together, this share of the interval after the last
# cycle began: at volume, requests end several times a second, and reading each one's stretch as soon as
# asked would cost a call or two per request. Ablation (both gap shares 0): 139 calls and p95 15.6 s,
# against 134-135 calls and 11.4-11.8 s; again (2nd sitting, 10ce507): 134 calls, p95 11.2 s, 2.03x, against
# 131 calls, 11.9 s, 2.01x. Inconclusive (4 s of p95 in one run of two): to run again before it may go.
LIGHT_READ_GAP_SHARE = 0.5
# A stream-stretch request waits this long, so that requests made together share calls.
# Ablation (0): 147 calls instead of 134-135 (10% more), p50 7.1 s instead of 7.7-7.9 s, p95 the same.
LIGHT_CYCLE_BATCH_SECONDS = 0.5
# After a failed cycle, the next waits the interval times 2 ** failures (jittered), at most this long (a failed
# durable status read waits 2 ** failures seconds, with the same ceiling);
# 2 ** `MAX_BACKOFF_DOUBLINGS` failed cycles is already past it (more would only overflow a float). Guards
# (tests/test_read_planner.py): the benchmark has no failed cycles.
MAX_BACKOFF_SECONDS = 60.0
MAX_BACKOFF_DOUBLINGS = 16
# A page answered with throttling or a transient error is asked again up to this many times in a row,
# after a jittered pause of at most 1, 2, 4, then `MAX_PAGE_PAUSE_SECONDS` (measured: pauses of up to 2, 4
# and 8 s held a read of stretches for 7.8 s and made p95 15.4 s; with 1, 2, 4, p95 12.3 s).
# Ablation (2nd; 0, a throttled page fails the cycle): p95 25.9 s and max 35.3 s, against 11.0-13.4 s.
MAX_PAGE_RETRIES = 6
MAX_PAGE_PAUSE_SECONDS = 8.0
# A poller with nobody to serve waits for work at most this long, or this many intervals, whichever is
# longer, before `PollNotServed` (a read that never completes). Guard: a trigger never waits forever.
MIN_SERVE_WAIT_SECONDS = 30.0
SERVE_WAIT_INTERVALS = 3

# --- How far back a full read reaches (`cloudwatch.read_planner`) ---------------------------------------------

# A full read starts at least this long before the last whole one began: room for ingestion delays not seen
# yet. Ablation (2nd; 0): 138 calls (3 of them reads behind followed streams), p95 11.8 s, 2.02x: within noise,
# since the benchmark's late batches teach the lookback in its first reads.
MIN_LOOKBACK_MS = 10_000
# Added to the longest ingestion delay seen: the clocks of the triggerer and of Lambda may differ a little.
# Ablation (0): within noise (131 calls, 1.97x): the benchmark's clocks are one machine's and agree.
LOOKBACK_MARGIN_MS = 5_000
# Once every this many intervals, a full read reaches back the whole ingestion allowance (at a 5 s
# interval: every 30 s) ... Ablation (2nd; no sweeps): 131 calls, p95 11.4 s, 1.97x: within noise. Kept: the
# only read that finds a line later than any delay seen before (tests/test_shared_poller.py, "found by a sweep").
SWEEP_EVERY_INTERVALS = 6
# ... and only after this many whole reads since the last: when reads take longer than the sweep period
# (a busy group), not every read becomes a sweep of the whole allowance, which would only make it longer.
# Ablation (0): within noise, since the benchmark's reads are short; when reads outlasted the sweep period
# (cf88fa8), 230 of 399 calls were sweeps of 120 s.
MIN_READS_BETWEEN_SWEEPS = 3
# The lookback follows the longest ingestion delay seen in the read under way and in this many whole reads
# before it, and no older than this. Ablation (no age limit): within noise, since six reads take under a
# minute here; the limit binds only when reads take over 10 s each (d352535).
DELAY_MEMORY_READS = SWEEP_EVERY_INTERVALS
DELAY_MEMORY_SECONDS = 60.0
# An event ingested this long before a read began is surely in it: CloudWatch's clock and the triggerer's
# may differ a little, and a just-ingested event may take a moment to be searchable. Ablation (0): within
# noise: the benchmark's clocks are one machine's and agree, and moto finds an event as soon as it is put.
INGESTION_HORIZON_MARGIN_MS = 2_000

# --- How the window is read (`cloudwatch.read_planner`, `cloudwatch.filter_patterns`) -------------------------

# The window is read without a pattern only while it fits in this many pages; a read that needs more stops,
# and the window is read filtered. Ablation (no limit): 156 calls, p95 17.5 s, 2.52x bytes, 105 MB RSS
# (baseline about 45 MB).
MAX_WINDOW_PAGES = 1
# A page counts as full at this share of what CloudWatch puts in one (events or bytes): CloudWatch also
# answers short pages when it stops searching. Ablation (2nd; 1.0): 141 calls (8 window reads, not 2), 2.16x,
# RSS 54 MB against 44-53 MB.
FULL_PAGE_SHARE = 0.5
# What a cycle that reads the group by request lines costs, in calls: its page, and about one read of the
# stretches of stream it closed (measured at volume when the group was read by every line with a UUID: 346
# calls in 176 cycles). The window is read unfiltered, and streams followed, while that costs no more.
# Ablation (2nd): 0 (never unfiltered) 134 calls, 1.99x; 10**6 (unfiltered whenever it fits) 140 calls, 2.03x:
# within noise both ways, since volume's window never fits a page. Kept: below 2, a group whose window fits a
# page is read by request lines and every request's stretch read again (tests/test_shared_poller.py, "lines
# without ids reach the request": no stretch read with it, several at 1).
REQUEST_LINES_CYCLE_CALLS = 2

# --- Which streams are read alone, with GetLogEvents (`cloudwatch.busy_streams`) ------------------------------

# A stream whose stretch has this many events left to read, at the rate a read of stretches that needs
# another page has brought them (once it has brought `BUSY_SAMPLE_EVENTS` to tell a rate), is read on its
# own (a function logging a line a second for 15 minutes stays under it; at 100, 894 streams were read one
# by one and GetLogEvents' budget made p95 189 s). Ablation (never): 130 calls, 206 GetLogEvents calls,
# 1.97x, within noise: in the benchmark every chatty request runs long enough to be sampled. Kept for the
# requests that print thousands of lines in less than a sample waits for (`SAMPLE_AFTER_RUN_MS` +
# `SAMPLE_DELAY_MS`), which only this tells busy (tests/test_shared_poller.py, a busy group).
BUSY_STREAM_EVENTS = 1_000
BUSY_SAMPLE_EVENTS = 100
# A stream that prints this many lines a second in a sample is busy. Ablation (2nd; never): 151 calls (82
# stretch reads, not 64-70), 161 GetLogEvents calls, 2.32x.
BUSY_LINES_PER_SECOND = 10
# A sample reads this long a slice of the running requests' streams, this long ago (their lines are
# ingested by then, but for a late batch), once the request has run this long before the slice: shorter
# stretches are not read on their own anyway, and the samples spread over time. Ablation (2nd; both waits 0,
# the newest second of any running request): 162 calls, 163 GetLogEvents calls, p95 13.4 s, 2.32x.
SAMPLE_SLICE_MS = 1_000
SAMPLE_DELAY_MS = 6_000
SAMPLE_AFTER_RUN_MS = 5_000
# A full read samples this many streams at most (one call), those of the oldest requests first: at volume,
# sampling every newcomer at once took calls from the reads of the first requests' stretches.
# Ablation (no sample at all): 146 calls, p95 12.7 s, 2.30x bytes, CPU 38 s instead of 26-30 s.
SAMPLE_STREAMS_PER_READ = 100
# A sample that finds no line in a stream tells nothing when a late batch holds the stream back (a stream is
# ingested in order): the request is sampled again, up to this many times in all (measured: the five chatty
# streams one try missed in one run each had a batch 20 s late in their slice). Ablation (1 try), over four
# sittings: 178.8 to 180.4 MB read (2.01x to 2.03x, five runs) against 176.6 to 178.1 MB with 3 (1.98x to 2.00x,
# four runs), calls within noise: about 2 MB, and what keeps the read under twice what is logged.
SAMPLE_TRIES = 3
# The marks of busy and sampled streams are forgotten at this many: a poller of a busy group for days tells
# them anew rather than growing. Guard on memory (tests/test_busy_streams.py).
MAX_STREAMS_KEPT = 10_000

# --- Memory and the event loop (`cloudwatch.shared_poller`, `runtime.loop_turns`) ----------------------------

# A subscriber that takes its events in as they come has at most this many (and a chunk of routing) waiting:
# the poller waits for it before it routes more (measured: one chatty request's 300,000 lines, peak RSS
# growth 472.2 MiB without it, 16.0 MiB with it). Ablation at volume (never wait): within noise (RSS
# 47.5 MB against 43-45 MB), since no request there logs more than a few thousand lines a read.
MAX_EVENTS_WAITING = 2_000
# Items of work (events, lines) per chunk: parsing one event costs about 10 to 30 microseconds, so a chunk
# holds the loop for a few milliseconds. Ablation (no chunks): at volume, worst loop lag 0.34 s, within the
# baselines' 0.25-0.38 s; with one request of 300,000 lines (2nd, `benchmarks.chatty_request`, two runs each),
# worst lag 0.21 / 0.22 s against 0.13 / 0.15 s, and 16 / 29 wake-ups over 0.1 s late against 1 / 2.
WORK_CHUNK = 250
# A trigger keeps its event keys by stream and by this many milliseconds of timestamp (`cloudwatch.delivered`);
# a range of stream read whole lets go of the slices it covers, so up to a slice of lines is kept at each of
# its ends. Narrower slices keep fewer there but cost more per key held (a set each). Ablation
# (`benchmarks.chatty_request --lines 300000`, 10,000 lines a second, one run each): keys kept after the
# stretch read 1,004 / 10,004 / 100,004 at 100 ms / 1 s / 10 s, time to verdict 26.6 / 28.6 / 27.4 s. Bytes
# per key held, measured for a stream logging 10 / 100 / 1,000 lines a second: 319 / 38 / 12 at 100 ms,
# 38 / 12 / 10 at 1 s, 12 / 10 / 11 at 10 s.
KEY_SLICE_MS = 1_000

# --- A durable execution's status reads (`verdict.durable_execution`, `sources.durable_status`) ---------------

# Status reads come at the task's poll interval for the first `STEADY_READS_SECONDS`, then every `AGE_SHARE`
# of the execution's age, never more than `MAX_STATUS_READ_SECONDS` apart: an execution that runs for days
# is read about every 5 minutes, and its end is noticed within 5 minutes. Not ablated: the benchmark has no
# durable executions; tests/test_durable_execution.py pins the schedule.
STEADY_READS_SECONDS = 600.0
AGE_SHARE = 0.05
MAX_STATUS_READ_SECONDS = 300.0
# A synchronous invoke created its execution before answering, so only the read's eventual consistency can
# hide it: a `ResourceNotFoundException` this long after the invoke means there is no such execution.
SYNC_VISIBILITY_SECONDS = 10.0
# A failed status read is tried again after 2 ** failures seconds (jittered), at most `MAX_BACKOFF_SECONDS`.

# --- Time (`runtime.clock`) -------------------------------------------------------------------------------------

# After a step back of the wall clock, the windows' clock runs at this share of the monotonic clock's pace
# until the wall clock catches up: never back (windows that end too early miss every new line), yet
# converging, since a step back is most often a fast clock set right. At half pace a lead of L s lasts 2 L.
# Guard against a wall-clock step (tests/test_clock_steps.py); no heuristic, so no ablation.
STEP_BACK_PACE = 0.5

# --- One trigger's reads (`sources.log_lines`) ------------------------------------------------------------------

# The shortest pause between two reads asked for by one trigger. Guard against a busy loop.
MIN_WAIT_SECONDS = 0.05
# A read of the request's stretch that ends its settle window reaches this long past its end at least
# (the settle window's length if longer): older runtimes write "Task timed out" just after REPORT. Guard on
# correctness (tests/test_shared_poller.py: a timeout logged after REPORT is read).
MIN_STRETCH_TAIL_SECONDS = 1.0
# The deadline has passed when a timeout asks whether its log group exists: the answer may not hold the event
# back longer than this. Guard on a wait.
LOG_GROUP_CHECK_SECONDS = 10.0
# A trigger's first start comes within seconds of the invoke; a restarted or taken-over trigger comes later
# (a triggerer's start-up, or Airflow's takeover after about 2 heartbeats). Later than this, lines ingested
# before the start may have been shown live by the triggerer before, and are not shown again. Guard on
# duplicated live lines (tests/test_only_ours.py: a trigger started late).
FIRST_START_WITHIN_SECONDS = 10.0
