"""Starlette releases: cached virtual environments, bisection and the
releases x invariants matrix. No argparse here: the commands live in `_cli`.
"""
