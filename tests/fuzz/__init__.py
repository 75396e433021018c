"""Property-based fuzzing of every RPC the server declares (issue 16).

`harness` holds the one implementation: RPCs enumerated from the generated descriptors, the
hypothesis strategies, the calls, the checks and the report. `tests/serving/test_fuzz.py` runs
it CI-sized; `python -m tests.fuzz` (`make fuzz`) runs it at >= 10,000 calls and prints a table.
"""
