"""Local demo websites that the test-suite and benchmarks crawl."""
