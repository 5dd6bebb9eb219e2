"""Time every benchmark workload and print a markdown report (also `fastnet bench`).

python bench/report.py [--quick] [--tiny]

--quick: 5 interleaved repetitions of short samples (the full report takes 11);
--tiny: toy sizes, for checking that the report runs (its numbers mean nothing).
"""

import sys

from fastnet._bench.workloads import main

if __name__ == "__main__":
    sys.exit(main(quick="--quick" in sys.argv, tiny="--tiny" in sys.argv))
