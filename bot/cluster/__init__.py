"""Cluster mode (docs/cluster.md): lead feeds publish lead fills to a Redis stream per lead under a
fenced lease (`lease.py`, `fills.py`); follower shards consume them through consumer groups
(`consume.py`). Nothing here is imported by a single process, so it never loads the Redis client;
`redis_client.connect` is where redis-py is first imported."""
