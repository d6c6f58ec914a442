"""Reading CloudWatch Logs: one shared reader per log group per triggerer process, what it reads next,
and how the events it brings reach the triggers that follow them."""
