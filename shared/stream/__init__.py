"""The event stream: a Redis stream of `<seq>-0` entries and an exactly-once consumer of it.

- `entries`: what the stream holds (`Delivery`, `GroupInfo`, `seq_of`, the payload field).
- `bus`: the `EventBus` protocol: publishing, the head, groups, reading, acks, backfill.
- `redis_bus`: `RedisStreamBus`, the bus on Redis; `trim`: its atomic trim (a Lua script).
- `batch`: the `Projection` and `Batch` protocols a consumer applies events through.
- `consumer`: `StreamConsumer`, the loop (claims, pending entries, new ones, stopping).
- `transaction`: one transaction of a consumer: gaps filled, events applied, checkpoint.
- `gaps`: the events from the checkpoint on, from the deliveries, the stream or the backfill.
- `isolation`: apply a batch whole, else one by one, telling what failed alone.
- `read_ahead`: the next read done in a background thread while the caller works.
- `transient`: which errors are outages or conflicts (retried) rather than an event's fault.
- `outages`: the consumer's backoff, and the deliveries an outage spoiled (not counted).
- `options`, `observer`, `applier_lock`: how a consumer reads, who hears it, who may apply.
"""
