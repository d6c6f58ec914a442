"""Development tooling: run a real Airflow 3 against the local AWS stack (the demo and end-to-end tests)."""
