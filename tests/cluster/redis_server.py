"""The cluster tests' redis-server: bot/bench/redis_server.py, where the benchmark starts its own
too. Re-exported here so the tests keep importing it from next to their fixtures."""

from bot.bench.redis_server import REDIS_SERVER, RedisServer, free_port, ping

__all__ = ["REDIS_SERVER", "RedisServer", "free_port", "ping"]
