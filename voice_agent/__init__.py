"""The receptionist, in rooms: ``call`` (the live call), ``consent`` (script and classifier),
``chat`` (the brain), ``records`` (what is stored), ``web`` (the HTTP and websocket edge) and
``cli`` (the ``receptionist`` command); settings and the wiring of services live here at the root.

Importing this package loads nothing else: each room is imported where it is used.
"""
