"""deem-eval: perception and hallucination benchmarks from the DEEM paper (RobustVQA, POPE)."""

__version__ = "0.1.0"
