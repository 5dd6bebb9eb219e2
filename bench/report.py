"""Run every benchmark workload once and print a markdown table (also `fastnet bench`).

python bench/report.py [--quick]
"""

import sys

from fastnet._bench import main

if __name__ == "__main__":
    sys.exit(main(quick="--quick" in sys.argv))
