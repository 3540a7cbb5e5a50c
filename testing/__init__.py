"""Test support shared by `tests/` and `bench/`: the stack of real processes (`helpers.Stack`),
the local demo sites (`sites/`), waits, a webhook receiver, proxies and a tripwire port, and a
`make run` under test (`make_run.Run`). Nothing here is imported by the service itself."""
