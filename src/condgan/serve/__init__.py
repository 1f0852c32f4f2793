"""`condgan serve`: a web page and a JSON API for trained models.

app.py is the HTTP server, routes.py what each API route answers, served.py loads the models it serves,
request.py reads and checks a request, answers.py turns images into a grid, JSON or a zip, folders.py holds
the folders a similarity model searches (--search-folder), kinds.py says how each kind of model is driven
(its fields become the page's controls), limits.py bounds what a client can make it spend, static/ is the
page. See docs/serving.md.
"""
