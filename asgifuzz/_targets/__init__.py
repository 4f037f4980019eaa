"""The user's own code: import specs for middleware and apps (never evaluated,
only literal arguments), the registry of allowed targets, route discovery, and
the ``[tool.asgifuzz]`` configuration.
"""
