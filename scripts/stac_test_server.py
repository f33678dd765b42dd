#!/usr/bin/env python3
"""Starts the test STAC API (tests/http/stac_server.py) in the foreground, printing its port.

    python3 scripts/stac_test_server.py --port 8765 --items 10000 --latency-ms 50

Every option of tests/http/stac_server.py is passed on (see its --help): --page-size,
--collections, --fault, --log, --write-static DIR.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SERVER = os.path.join(os.path.dirname(HERE), "tests", "http", "stac_server.py")

if __name__ == "__main__":
    os.execv(sys.executable, [sys.executable, SERVER] + sys.argv[1:])
