"""Standalone reproducers: a Python script per corpus entry that needs only
Starlette and anyio (templates of the models, the checks of the invariants).
"""
