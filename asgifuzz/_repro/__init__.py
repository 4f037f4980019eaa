"""Standalone reproducers: a Python script per corpus entry that needs only
Starlette and anyio: `script.render_repro` puts together the app (`app`,
`middleware`, `endpoint`: templates of the models), the scripted `server` and
the check of the invariant (`checks`), in the template language of `render`.
"""
