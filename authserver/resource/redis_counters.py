"""The rate-limit counters in Redis (see ``sliding_window`` for the layout and the arithmetic):
one round trip per request, a Lua script that reads both windows of every limit, decides, and
takes one from each only if all allow it. Redis runs a script atomically, so concurrent requests
of one account, from any worker, can never together exceed a limit.
"""

from __future__ import annotations

import hashlib
import os

from redis.exceptions import NoScriptError

from .sliding_window import Limit, Window

# KEYS: each limit's previous and current key, in pairs; ARGV: each limit's size and window
# length in seconds, in pairs. Returns one string of integers: 1 or 0 (allowed), then per limit
# as read before this request: previous count, its TTL in ms, current count, its TTL in ms (one
# string: cheaper to parse than an array). Every key of a call is named in KEYS, as scripts must.
TAKE_SCRIPT = """
local function read(previous_key, current_key, window)
  local current_ttl = redis.call('pttl', current_key)
  if current_ttl > 0 and current_ttl < window then
    -- less than one window left: it becomes the previous one, a new one starts now
    redis.call('rename', current_key, previous_key)
    redis.call('set', current_key, 0, 'PX', current_ttl + window)
  end
  return tonumber(redis.call('get', previous_key)) or 0, math.max(0, redis.call('pttl', previous_key)),
         tonumber(redis.call('get', current_key)) or 0, math.max(0, redis.call('pttl', current_key))
end

local reply, allowed = {0}, true
for i = 1, #KEYS, 2 do
  local limit, window = tonumber(ARGV[i]), tonumber(ARGV[i + 1]) * 1000
  local previous, previous_ttl, current, current_ttl = read(KEYS[i], KEYS[i + 1], window)
  if math.floor(previous * previous_ttl / window) + current >= limit then  -- Window.remaining < 1
    allowed = false
  end
  for _, value in ipairs({previous, previous_ttl, current, current_ttl}) do
    reply[#reply + 1] = string.format('%d', value)
  end
end
if allowed then
  reply[1] = 1
  for i = 1, #KEYS, 2 do
    if redis.call('exists', KEYS[i + 1]) == 1 then
      redis.call('incr', KEYS[i + 1])
    else
      redis.call('set', KEYS[i + 1], 1, 'PX', tonumber(ARGV[i + 1]) * 2000)
    end
  end
end
return table.concat(reply, ' ')
"""


class RedisCounters:
    """Counters in Redis, shared by every worker: one EVALSHA per request.

    The command goes out on a redis-py connection of our own (redis-py connects, authenticates,
    applies the timeouts and speaks the protocol): its client and pool around it cost several
    times the CPU of the round trip itself. A connection serves one call at a time; idle ones are kept for
    the next call, those of a parent process never reused after a fork."""

    def __init__(self, pool, key_prefix: str) -> None:
        self.pool = pool
        self.key_prefix = key_prefix
        self._script = TAKE_SCRIPT.encode()
        self._sha = hashlib.sha1(self._script).hexdigest().encode()
        self._idle: list = []
        self._pid = os.getpid()

    def take(self, account_id: str, limits: tuple[Limit, ...]) -> tuple[bool, list[Window]]:
        args = []
        for limit in limits:
            current = f"{self.key_prefix}:{{{limit.key_for(account_id)}}}".encode()  # {…}: one hash slot per limit
            args += (current + b"/-1", current)
        args += [b"%d" % number for limit in limits for number in (limit.amount, limit.seconds)]
        allowed, *values = map(int, self._call(b"%d" % (2 * len(limits)), args).split())
        windows = [
            Window(limit.amount, limit.seconds, values[i], values[i + 1] / 1000, values[i + 2], values[i + 3] / 1000)
            for limit, i in zip(limits, range(0, len(values), 4))
        ]
        return allowed == 1, windows

    def _call(self, key_count: bytes, args: list[bytes]) -> bytes:
        connection = self._connection()
        try:
            connection.send_command(b"EVALSHA", self._sha, key_count, *args)
            try:
                reply = connection.read_response()
            except NoScriptError:  # a restarted or flushed Redis: EVAL sends the script and caches it
                connection.send_command(b"EVAL", self._script, key_count, *args)
                reply = connection.read_response()
        except BaseException:
            connection.disconnect()  # a half-read reply must never answer the next call
            raise
        self._idle.append(connection)
        return reply

    def _connection(self):
        if self._pid != os.getpid():  # forked: the parent's sockets are the parent's
            self._idle, self._pid = [], os.getpid()
        try:
            return self._idle.pop()  # atomic: each idle connection goes to one thread
        except IndexError:
            return self.pool.make_connection()

    def close(self) -> None:
        for connection in self._idle:
            connection.disconnect()
        self._idle = []
        self.pool.disconnect()
