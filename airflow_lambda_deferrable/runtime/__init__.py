"""What the asynchronous parts share: the clock, the pace of AWS requests, and turns of the event loop."""
