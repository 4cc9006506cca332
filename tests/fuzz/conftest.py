from tests.e2e.conftest import e2e_relay, hub, start_hub  # noqa: F401  (real hub fixtures)
