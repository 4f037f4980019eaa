"""The ``asgifuzz`` command: one module per command (parse the options, call
one function, print). The top of the import graph: nothing imports it.
"""
