"""The pure decision: what a log line is, which lines are the invocation's, and what they say happened.

No I/O and no clock: every time is passed in. Both the trigger and the resumed task read these modules.
"""
