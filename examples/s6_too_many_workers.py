"""S6: a CPU-bound pool sized by os.cpu_count() + 1 on a machine with fewer
physical cores: the workers slow each other down. Expected finding: S6."""
import os

from _common import run_pool

if __name__ == "__main__":
    run_pool((os.cpu_count() or 1) + 1)
