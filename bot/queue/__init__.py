"""The durable delivery queue on PostgreSQL (scale-out mode).

Without a queue the webhook app runs the handlers inside the request (the embedded
default). With ``CVF_QUEUE_DSN`` (or the variable ``server.queue_dsn_env`` names) set,
``POST /webhook`` verifies the signature, stores the delivery in ``cvf_deliveries`` and
defers a procrastinate job; ``cvf worker`` processes run the same handlers.

- ``store``: the deliveries table, its schema versions, the tick's advisory lock, pruning
  by retention (``server.queue_retention``; dead deliveries are kept until replayed).
- ``schema``: procrastinate's tables: created, their migration level recorded, upgraded
  when a newer procrastinate is installed (pre-migrations at start-up, post-migrations
  by ``cvf deliveries migrate``).
- ``worker``: the procrastinate app, the job that runs one delivery, the worker loop and
  its maintenance round (stalled jobs, orphans, hourly pruning).
"""
