"""A browser explorer for a generator: `state` (the view as URL parameters and its run_generator.py command),
`render` (the serialised renderer), `server` (the HTTP server) and `static/` (the page, vanilla JS).
Nothing imports this package but run_explorer.py and the tests."""
